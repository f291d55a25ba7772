# The OsirisCare binaries, built from the Cargo workspace with nixpkgs' Rust tooling.
# `osirisd`, `osiris-console` and `osiris-central` are built when their crates are in the tree and in the workspace;
# the endpoint agent `osiris-agent` is its own package (agent-package.nix), built static and small.
{
  lib,
  rustPlatform,
  pkg-config,
  openssl,
  krb5,
}:
let
  root = ../.;
  workspace = builtins.readFile (root + "/Cargo.toml");
  hasDaemon = builtins.pathExists (root + "/crates/daemon/Cargo.toml");
  hasConsole = builtins.pathExists (root + "/tui/Cargo.toml") && lib.hasInfix "\"tui\"" workspace;
  hasCentral = builtins.pathExists (root + "/crates/central/Cargo.toml");
  binaries = [
    "osiris"
  ]
  ++ lib.optional hasDaemon "osirisd"
  ++ lib.optional hasConsole "osiris-console"
  ++ lib.optional hasCentral "osiris-central";
in
rustPlatform.buildRustPackage {
  pname = "osiris";
  version = "0.0.0";

  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      (root + "/Cargo.toml")
      (root + "/Cargo.lock")
      (root + "/crates")
      (lib.fileset.maybeMissing (root + "/tui"))
      # The agent gateway's .proto, compiled by crates/agent-proto's build script.
      (lib.fileset.maybeMissing (root + "/proto"))
    ];
  };
  cargoLock.lockFile = root + "/Cargo.lock";

  cargoBuildFlags = lib.concatMap (binary: [
    "--bin"
    binary
  ]) binaries;

  # libssh2-sys links the system OpenSSL; SQLite is bundled by sqlx. Kerberos logins to the
  # workstations (scan-winrm) link MIT's libgssapi_krb5, whose bindings bindgen generates.
  nativeBuildInputs = [
    pkg-config
    rustPlatform.bindgenHook
  ];
  buildInputs = [
    openssl
    krb5
  ];

  # The integration tests need namespaces, peers and root, which the Nix sandbox does not give;
  # CI runs them (`scripts/test`).
  doCheck = false;

  passthru = { inherit binaries; };

  meta = {
    description = "OsirisCare HIPAA compliance appliance: scanner, healer and evidence log";
    license = lib.licenses.agpl3Only;
    mainProgram = "osiris";
    platforms = lib.platforms.linux;
  };
}
