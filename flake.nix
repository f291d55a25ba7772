# OsirisCare appliance flake: the Rust workspace as a package, the NixOS modules, the installed
# appliance system, the installer ISO, and the NixOS VM tests (one file per scenario in vm-tests/).
# Modules are written `import ./nixos/x.nix` so that Nix 2.8's `flake check` accepts them.
{
  description = "OsirisCare compliance appliance";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      system = "x86_64-linux";
      pkgs = import nixpkgs {
        inherit system;
        overlays = [ self.overlays.default ];
      };

      # The release this tree builds; updates must carry a newer one.
      release = "0.0.0";

      # The installed appliance without its release number: the image sets `release` below, the
      # VM tests set their own.
      applianceModules = [
        self.nixosModules.default
        ./iso/appliance.nix
      ];

      iso =
        (lib.nixosSystem {
          inherit system;
          modules = [
            ./iso/iso.nix
            {
              osiris.installer =
                let
                  appliance = self.nixosConfigurations.appliance.config;
                  encryption = appliance.services.osiris.diskEncryption;
                in
                {
                  system = appliance.system.build.toplevel;
                  inherit release;
                  encrypt = encryption.enable;
                  inherit (encryption) tpm2Pcrs allowNoTpm;
                  secureBoot = appliance.services.osiris.secureBoot.enable;
                };
            }
          ];
        }).config.system.build.isoImage;

      # Every vm-tests/*.nix is a scenario; a file may evaluate to null to opt out (e.g. the
      # Windows scenario without a Windows image).
      vmTests = lib.filterAttrs (_: test: test != null) (
        lib.mapAttrs'
          (
            file: _:
            lib.nameValuePair "vm-${lib.removeSuffix ".nix" file}" (
              import (./vm-tests + "/${file}") {
                inherit pkgs self applianceModules;
              }
            )
          )
          (
            lib.filterAttrs (file: type: type == "regular" && lib.hasSuffix ".nix" file) (
              builtins.readDir ./vm-tests
            )
          )
      );
    in
    {
      overlays.default = final: _prev: {
        osiris = final.callPackage ./nixos/package.nix { };
      };

      nixosModules = {
        osiris = import ./nixos/osiris.nix;
        console = import ./nixos/console.nix;
        hardening = import ./nixos/hardening.nix;
        updates = import ./nixos/updates.nix;
        disk-encryption = import ./nixos/disk-encryption.nix;
        secure-boot = import ./nixos/secure-boot.nix;
        # Central Command runs on the partner's server, not on appliances: not in `default`.
        central = import ./nixos/central.nix;
        default = {
          imports = [
            self.nixosModules.osiris
            self.nixosModules.console
            self.nixosModules.hardening
            self.nixosModules.updates
            self.nixosModules.disk-encryption
            self.nixosModules.secure-boot
          ];
          nixpkgs.overlays = [ self.overlays.default ];
        };
      };

      nixosConfigurations.appliance = lib.nixosSystem {
        inherit system;
        modules = applianceModules ++ [ { services.osiris.updates.release = release; } ];
      };

      packages.${system} = {
        inherit (pkgs) osiris;
        inherit iso;
        default = pkgs.osiris;
        # The endpoint agent: one static Linux binary, and the Windows build cross-compiled with
        # mingw-w64 (as CI does with Debian's toolchain).
        osiris-agent = pkgs.pkgsStatic.callPackage ./nixos/agent-package.nix { };
        osiris-agent-windows = pkgs.pkgsCross.mingwW64.callPackage ./nixos/agent-package.nix { };
      };

      checks.${system} = {
        inherit (pkgs) osiris;
        appliance = self.nixosConfigurations.appliance.config.system.build.toplevel;
        format =
          pkgs.runCommand "osiris-nix-format"
            {
              nativeBuildInputs = [
                pkgs.nixfmt
                pkgs.deadnix
              ];
            }
            ''
              cd ${self}
              nixfmt --check $(find . -name '*.nix' -not -path './vm-tests/lab/*')
              deadnix --fail $(find . -name '*.nix' -not -path './vm-tests/lab/*')
              touch $out
            '';
      }
      // vmTests;

      formatter.${system} = pkgs.nixfmt;
    };
}
