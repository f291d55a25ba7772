# The installer ISO, built on installer/cd-dvd/iso-image.nix (not installation-cd-minimal.nix,
# which copies nixpkgs into the store on every evaluation). It boots, finds the one internal
# disk (removable media are skipped), partitions it, installs the appliance closure it carries,
# writes the first boot entry and powers off.
{
  config,
  lib,
  pkgs,
  modulesPath,
  ...
}:
let
  cfg = config.osiris.installer;
  system = cfg.system;

  installer = pkgs.writeShellApplication {
    name = "osiris-auto-install";
    runtimeInputs = with pkgs; [
      coreutils
      util-linux
      dosfstools
      e2fsprogs
      gnugrep
      gnused
      gawk
      nixos-install-tools
      nix
      systemd
    ];
    text = ''
      log() { echo "osiris-install: $*" | tee /dev/console; }

      # The medium we booted from, so it is never a candidate.
      boot_dev=$(findmnt -no SOURCE /iso 2>/dev/null | xargs -r lsblk -no PKNAME 2>/dev/null || true)

      candidates=()
      for dev in /sys/block/*; do
        name=$(basename "$dev")
        case "$name" in loop*|sr*|ram*|zram*|dm-*|md*) continue ;; esac
        [ "$(cat "$dev/removable")" = 0 ] || { log "skipping removable $name"; continue; }
        [ "$name" != "$boot_dev" ] || { log "skipping boot medium $name"; continue; }
        size_gib=$(( $(cat "$dev/size") * 512 / 1024 / 1024 / 1024 ))
        [ "$size_gib" -ge ${toString cfg.minDiskGiB} ] || { log "skipping $name: ''${size_gib} GiB is too small"; continue; }
        candidates+=("$name")
      done

      if [ "''${#candidates[@]}" -ne 1 ]; then
        log "found ''${#candidates[@]} internal disks (''${candidates[*]:-none}); need exactly one. Nothing was written."
        exit 1
      fi
      disk=/dev/''${candidates[0]}

      if [ -n "$(lsblk -no PARTTYPE "$disk" | grep -v '^$' || true)" ] && ! grep -qw osiris.install=wipe /proc/cmdline; then
        log "$disk already has partitions; boot with osiris.install=wipe to overwrite it. Nothing was written."
        exit 1
      fi

      log "installing OsirisCare ${cfg.release} to $disk"
      wipefs -a "$disk"
      sfdisk --label gpt "$disk" <<'LAYOUT'
      size=1GiB, type=uefi, name=OSIRIS-ESP
      size=${toString cfg.rootGiB}GiB, type=linux, name=osiris-root
      type=linux, name=osiris-data
      LAYOUT
      udevadm settle
      part() { lsblk -nlo PATH "$disk" | sed -n "$(( $1 + 1 ))p"; }
      mkfs.vfat -F 32 -n OSIRIS-ESP "$(part 1)"
      mkfs.ext4 -q -F -L osiris-root "$(part 2)"
      mkfs.ext4 -q -F -L osiris-data "$(part 3)"
      udevadm settle

      mkdir -p /mnt
      mount /dev/disk/by-label/osiris-root /mnt
      mkdir -p /mnt/boot /mnt/var/lib/osiris
      mount -o umask=0077 /dev/disk/by-label/OSIRIS-ESP /mnt/boot
      mount /dev/disk/by-label/osiris-data /mnt/var/lib/osiris

      nixos-install --system ${system} --no-root-passwd --no-channel-copy --option substituters ""

      # The first boot entry in the updater's format, blessed (no counter): the updater's
      # entries sort after it only by version, never by name.
      rm -f /mnt/boot/loader/entries/nixos-generation-*.conf
      mkdir -p /mnt/boot/EFI/osiris /mnt/boot/loader/entries
      cp ${system}/kernel /mnt/boot/EFI/osiris/osiris-${cfg.release}-linux.efi
      cp ${system}/initrd /mnt/boot/EFI/osiris/osiris-${cfg.release}-initrd.efi
      cat > /mnt/boot/loader/entries/osiris-${cfg.release}.conf <<ENTRY
      title OsirisCare ${cfg.release}
      version ${cfg.release}
      sort-key osiris
      linux /EFI/osiris/osiris-${cfg.release}-linux.efi
      initrd /EFI/osiris/osiris-${cfg.release}-initrd.efi
      options init=${system}/init $(cat ${system}/kernel-params)
      ENTRY
      printf 'timeout 0\nconsole-mode keep\neditor no\n' > /mnt/boot/loader/loader.conf
      sync
      umount -R /mnt
      log "done; remove the USB stick. Powering off."
      systemctl poweroff
    '';
  };
in
{
  imports = [
    "${modulesPath}/installer/cd-dvd/iso-image.nix"
    "${modulesPath}/profiles/minimal.nix"
  ];

  options.osiris.installer = {
    system = lib.mkOption {
      type = lib.types.package;
      description = "The appliance's `config.system.build.toplevel` to install.";
    };
    release = lib.mkOption {
      type = lib.types.strMatching "[0-9]+\\.[0-9]+\\.[0-9]+";
      description = "Its release version (the first boot entry's version).";
    };
    minDiskGiB = lib.mkOption {
      type = lib.types.ints.positive;
      default = 32;
      description = "Smaller disks are not install targets.";
    };
    rootGiB = lib.mkOption {
      type = lib.types.ints.positive;
      default = 24;
      description = "Size of the system partition (the Nix store holding two systems).";
    };
  };

  config = {
    system.stateVersion = "25.11";
    isoImage.makeEfiBootable = true;
    isoImage.makeUsbBootable = true;
    isoImage.appendToMenuLabel = " OsirisCare installer";
    isoImage.storeContents = [ system ];

    networking.hostName = "osiris-installer";
    services.openssh.enable = false;
    documentation.enable = false;

    systemd.services.osiris-auto-install = {
      description = "Install OsirisCare to the internal disk";
      wantedBy = [ "multi-user.target" ];
      after = [ "local-fs.target" ];
      unitConfig.ConditionKernelCommandLine = "!osiris.install=no";
      serviceConfig = {
        Type = "oneshot";
        ExecStart = lib.getExe installer;
        StandardOutput = "journal+console";
      };
    };
  };
}
