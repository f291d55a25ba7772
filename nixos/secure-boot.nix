# services.osiris.secureBoot: boot only unified kernel images (kernel, initrd and command line in
# one EFI binary) signed with the vendor's Secure Boot key, so nobody with the disk can change
# what the TPM-unlocked system runs. The UKI is built by nixpkgs (`system.build.uki`); it is signed
# outside Nix (the key must never enter the store) and handed to the installer as
# `osiris.installer.signedUki`. The vendor certificate is enrolled in the firmware before the
# installer runs, so the TPM is bound to the Secure Boot state the appliance boots in.
# With services.osiris.updates, the updater is told (`secure_boot` in update.toml) to require the
# manifest's signed UKI and stage it as a type #2 entry (EFI/Linux/osiris_<version>.efi).
# See docs/DISK-ENCRYPTION.md, "Secure Boot" and "Secure Boot and updates".
{
  config,
  lib,
  ...
}:
let
  cfg = config.services.osiris.secureBoot;
in
{
  options.services.osiris.secureBoot = {
    enable = lib.mkEnableOption ''
      boot only vendor-signed unified kernel images; the installer must be given the signed UKI
      (`osiris.installer.signedUki`)
    '';
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = config.boot.loader.systemd-boot.enable && !config.boot.loader.systemd-boot.editor;
        message = "services.osiris.secureBoot needs systemd-boot with its editor off.";
      }
    ];

    # The UKI the vendor signs: osiris_<release>.efi, with the command line built in (systemd-stub
    # ignores a command line from the boot loader when Secure Boot is on).
    boot.uki.name = "osiris";
    boot.uki.version = config.services.osiris.updates.release;
  };

  meta.maintainers = [ ];
}
