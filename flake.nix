# OsirisCare appliance flake.
# Today it only packages the Rust workspace; the NixOS modules, the ISO, atomic updates and the
# VM tests arrive with the image work (see nixos/README.md, iso/README.md, vm-tests/README.md).
{
  description = "OsirisCare compliance appliance";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      osiris = pkgs.rustPlatform.buildRustPackage {
        pname = "osiris";
        version = "0.0.0";
        src = ./.;
        cargoLock.lockFile = ./Cargo.lock;
        cargoBuildFlags = [
          "--bin"
          "osiris"
        ];
        # The integration tests need namespaces and peers that the Nix sandbox does not give.
        doCheck = false;
      };
    in
    {
      packages.${system} = {
        inherit osiris;
        default = osiris;
      };
      formatter.${system} = pkgs.nixfmt-rfc-style;
    };
}
