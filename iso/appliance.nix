# The installed appliance: every OsirisCare module, systemd-boot with boot counting, and the
# disk layout the installer creates (labels, not device names, so any internal disk works).
#
# Layout (see iso/README.md): ESP `OSIRIS-ESP` (1 GiB, FAT32, not encrypted) holds the kernels
# and boot entries of the running and the next system (the A/B slots); the GPT partitions
# `osiris-root` and `osiris-data` are LUKS2 volumes (nixos/disk-encryption.nix) opened as
# /dev/mapper/osiris-root and /dev/mapper/osiris-data, each holding an ext4 file system of the same
# label: the root one holds the Nix store, where both systems share their common store paths; the
# data one holds /var/lib/osiris, so evidence survives a reinstall of the system partition.
{
  lib,
  modulesPath,
  ...
}:
{
  imports = [
    "${modulesPath}/profiles/minimal.nix"
    "${modulesPath}/profiles/qemu-guest.nix"
  ];

  system.stateVersion = "25.11";
  networking.hostName = lib.mkDefault "osiris";
  networking.useDHCP = lib.mkDefault true;
  # The time zone is chosen on the console (services.osiris.applyConsoleSettings); UTC until then.

  boot.loader.systemd-boot.enable = true;
  # The updater writes its own entries (`osiris-<release>.conf`, sort-key `osiris`).
  boot.loader.systemd-boot.editor = false;
  boot.loader.systemd-boot.configurationLimit = 2;
  boot.loader.efi.canTouchEfiVariables = true;
  boot.loader.timeout = 0;

  fileSystems."/" = {
    device = "/dev/disk/by-label/osiris-root";
    fsType = "ext4";
    options = [ "noatime" ];
  };
  fileSystems."/boot" = {
    device = "/dev/disk/by-label/OSIRIS-ESP";
    fsType = "vfat";
    options = [
      "umask=0077"
      "nosuid"
      "nodev"
      "noexec"
    ];
  };
  fileSystems."/var/lib/osiris" = {
    device = "/dev/disk/by-label/osiris-data";
    fsType = "ext4";
    options = [
      "noatime"
      "nosuid"
      "nodev"
      "noexec"
    ];
  };

  services.osiris = {
    enable = true;
    settings.site = lib.mkDefault "unconfigured";
  };
  services.osiris.console.enable = true;
  services.osiris.hardening = {
    enable = true;
    immutableEtc = true;
  };
  # LUKS2 root and data unlocked by the TPM2 (PCR 7), keys sealed to it; the installer creates
  # the volumes. See docs/DISK-ENCRYPTION.md.
  services.osiris.diskEncryption.enable = lib.mkDefault true;
  services.osiris.updates = {
    enable = lib.mkDefault false;
    release = lib.mkDefault "0.0.0";
  };
}
