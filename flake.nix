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

      # The installer ISO of an appliance configuration; `signedUki`: the vendor-signed UKI of
      # that appliance when it boots only signed UKIs.
      mkIso =
        appliance: signedUki:
        (lib.nixosSystem {
          inherit system;
          modules = [
            ./iso/iso.nix
            {
              osiris.installer =
                let
                  encryption = appliance.services.osiris.diskEncryption;
                in
                {
                  system = appliance.system.build.toplevel;
                  inherit release signedUki;
                  encrypt = encryption.enable;
                  inherit (encryption) tpm2Pcrs allowNoTpm;
                  secureBoot = appliance.services.osiris.secureBoot.enable;
                };
            }
          ];
        }).config.system.build.isoImage;
      iso = mkIso self.nixosConfigurations.appliance.config null;

      # The Secure Boot release (docs/UPDATES.md, "Publishing a release"): the UKI of
      # `nixosConfigurations.appliance-secure-boot` is signed outside Nix (the key never enters
      # the store), then `OSIRIS_SIGNED_UKI=/path/osiris_<release>.efi nix build --impure
      # .#iso-secure-boot` builds the installer that installs it; `osiris-release sign-iso` signs
      # that ISO. Without the variable (and in pure evaluation) the package does not exist.
      signedUkiFile = builtins.getEnv "OSIRIS_SIGNED_UKI";
      isoSecureBoot = mkIso self.nixosConfigurations.appliance-secure-boot.config (
        builtins.path {
          path = signedUkiFile;
          name = "osiris-signed-uki.efi";
        }
      );

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
      # The same appliance booting only vendor-signed UKIs (Secure Boot; the TPM bound to it).
      nixosConfigurations.appliance-secure-boot = lib.nixosSystem {
        inherit system;
        modules = applianceModules ++ [
          {
            services.osiris.updates.release = release;
            services.osiris.secureBoot.enable = true;
          }
        ];
      };

      packages.${system} = {
        inherit (pkgs) osiris;
        inherit iso;
        default = pkgs.osiris;
        # The endpoint agent: one static Linux binary, and the Windows build cross-compiled with
        # mingw-w64 (as CI does with Debian's toolchain).
        osiris-agent = pkgs.pkgsStatic.callPackage ./nixos/agent-package.nix { };
        osiris-agent-windows = pkgs.pkgsCross.mingwW64.callPackage ./nixos/agent-package.nix { };
        # A name that is null leaves the attribute out: only with OSIRIS_SIGNED_UKI set.
        ${if signedUkiFile != "" then "iso-secure-boot" else null} = isoSecureBoot;
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
