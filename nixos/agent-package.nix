# osiris-agent, the endpoint agent, built from the Cargo workspace with the `agent` profile (size
# over speed: opt-level z, LTO, one codegen unit, panic = abort, stripped).
# The flake builds it with `pkgsStatic` for Linux (one static x86_64 binary that runs on any
# distribution) and with `pkgsCross.mingwW64` for Windows (see docs/NIX-EVALUATION.md for what
# has been evaluated and built).
{
  lib,
  rustPlatform,
}:
let
  root = ../.;
in
rustPlatform.buildRustPackage {
  pname = "osiris-agent";
  version = "0.0.0";

  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      (root + "/Cargo.toml")
      (root + "/Cargo.lock")
      (root + "/crates")
      (lib.fileset.maybeMissing (root + "/tui"))
      (root + "/proto")
    ];
  };
  cargoLock.lockFile = root + "/Cargo.lock";

  # The custom profile (target/<triple>/agent) and only the agent's package and binary.
  buildType = "agent";
  cargoBuildFlags = [
    "--package"
    "agent"
    "--bin"
    "osiris-agent"
  ];

  # The agent's tests run real checks and a real gateway; CI runs them (`scripts/test`).
  doCheck = false;

  meta = {
    description = "OsirisCare endpoint agent: checks a machine locally and reports to its appliance";
    license = lib.licenses.agpl3Only;
    mainProgram = "osiris-agent";
    platforms = lib.platforms.linux ++ lib.platforms.windows;
  };
}
