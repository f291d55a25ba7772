# The installer ISO, built on installer/cd-dvd/iso-image.nix (not installation-cd-minimal.nix,
# which copies nixpkgs into the store on every evaluation). It boots, finds the one internal
# disk (removable media are skipped), partitions it, encrypts the root and data partitions
# (LUKS2, TPM2 enrollment, a recovery key shown once on the console), installs the appliance
# closure it carries, writes the first boot entry and powers off. See docs/DISK-ENCRYPTION.md.
# With `osiris.installer.ukiBoot` (the default under Secure Boot) the ISO boots its own unified
# kernel image, the layout `osiris-release sign-iso` signs (docs/UPDATES.md).
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
  pcrs = lib.concatMapStringsSep "+" toString cfg.tpm2Pcrs;
  encryptVolume = pkgs.callPackage ../nixos/encrypt-volume.nix { };

  # The installer's own unified kernel image (its kernel, initrd and command line, with the ISO's
  # root label, in one EFI binary: nixpkgs' `system.build.uki`), and the FAT image that holds it
  # as the removable-media boot path, EFI/BOOT/BOOTX64.EFI: no boot loader, so the one binary
  # `osiris-release sign-iso` signs is everything the firmware runs.
  installerUki = "${config.system.build.uki}/${config.system.boot.loader.ukiFile}";
  ukiEfiImage =
    pkgs.runCommand "osiris-installer-efi.img"
      {
        nativeBuildInputs = with pkgs; [
          dosfstools
          mtools
          libfaketime
        ];
      }
      ''
        # The UKI plus 2 MiB: FAT overhead and the signatures sign-iso adds (a few KiB each).
        size=$(( ($(stat -c %s ${installerUki}) / 1048576 + 2) * 1024 ))
        truncate -s "''${size}K" "$out"
        faketime "2000-01-01 00:00:00" mkfs.vfat --invariant -i 12345678 -n EFIBOOT "$out"
        faketime "2000-01-01 00:00:00" mmd -i "$out" ::/EFI ::/EFI/BOOT
        faketime "2000-01-01 00:00:00" mcopy -pm -i "$out" ${installerUki} ::/EFI/BOOT/BOOTX64.EFI
        fsck.vfat -vn "$out"
      '';

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
      cryptsetup
      encryptVolume
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
        ${
          if cfg.ukiBoot then
            ''
              # A signed UKI's command line cannot be changed at boot: ask on the console instead.
              answer=$(systemd-ask-password --timeout=0 --echo=yes "$disk ($(lsblk -dno SIZE,MODEL "$disk" | xargs)) already has partitions. Type ERASE to erase it and install, anything else to stop:")
              if [ "$answer" != ERASE ]; then
                log "$disk was not erased. Nothing was written."
                exit 1
              fi
            ''
          else
            ''
              log "$disk already has partitions; boot with osiris.install=wipe to overwrite it. Nothing was written."
              exit 1
            ''
        }
      fi

      ${lib.optionalString cfg.secureBoot ''
        # The TPM is bound to PCR 7, the Secure Boot state: enrolling here with Secure Boot off
        # would bind it to a state the appliance never boots in again.
        sb=/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c
        if [ "$(od -An -tu1 -j4 -N1 "$sb" 2>/dev/null | tr -d ' ')" != 1 ]; then
          log "Secure Boot is off: enroll the vendor certificate and turn Secure Boot on in the firmware setup, then boot this installer again. Nothing was written."
          exit 1
        fi
      ''}
      ${
        if cfg.encrypt then
          ''
            # A TPM 2.0 unlocks the disks at boot; without one the appliance needs a passphrase.
            tpm_pcrs=${pcrs}
            if ! [ -c /dev/tpmrm0 ] || [ "$(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null)" != 2 ]; then
              ${
                if cfg.allowNoTpm then
                  ''
                    log "no TPM 2.0 found: the appliance will ask for a boot passphrase on its console at every start"
                    tpm_pcrs=none
                  ''
                else
                  ''
                    log "no TPM 2.0 found: turn on the TPM (TPM, PTT or fTPM) in the firmware setup and boot this installer again. Nothing was written."
                    exit 1
                  ''
              }
            fi
          ''
        else
          ""
      }
      log "installing OsirisCare ${cfg.release} to $disk"
      wipefs -a "$disk"
      sfdisk --label gpt "$disk" <<'LAYOUT'
      size=1GiB, type=uefi, name=OSIRIS-ESP
      size=${toString cfg.rootGiB}GiB, type=linux, name=osiris-root
      type=linux, name=osiris-data
      LAYOUT
      udevadm settle
      part() { lsblk -nlo PATH "$disk" | sed -n "$(( $1 + 1 ))p"; }
      # Taken now: once a LUKS volume is open, lsblk lists it among the partitions.
      esp_part=$(part 1)
      root_part=$(part 2)
      data_part=$(part 3)
      mkfs.vfat -F 32 -n OSIRIS-ESP "$esp_part"
      ${
        if cfg.encrypt then
          ''
            # Secrets live only in RAM (/run) and are erased on exit.
            secrets=$(umask 077 && mktemp -d /run/osiris-install.XXXXXX)
            trap 'shred -u "$secrets"/* 2>/dev/null || true; rm -rf "$secrets"' EXIT
            # 256 random bits in systemd's recovery-key form (modhex: the same letters on every
            # keyboard layout), eight groups of eight.
            recovery=$(head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' \
              | tr 0123456789abcdef cbdefghijklnrtuv | sed 's/.\{8\}/&-/g; s/-$//')
            printf %s "$recovery" >"$secrets/recovery"
            osiris-encrypt-volume "$root_part" osiris-root "$secrets/recovery" "$tpm_pcrs"
            osiris-encrypt-volume "$data_part" osiris-data "$secrets/recovery" "$tpm_pcrs"
            if [ "$tpm_pcrs" = none ]; then
              # No TPM: a passphrase chosen now opens both volumes at every start.
              while :; do
                systemd-ask-password --timeout=0 "Choose the boot passphrase (12 characters or more), typed at every start:" >"$secrets/passphrase"
                systemd-ask-password --timeout=0 "Type it again:" >"$secrets/again"
                if [ "$(wc -c <"$secrets/passphrase")" -ge 13 ] && cmp -s "$secrets/passphrase" "$secrets/again"; then
                  break
                fi
                echo "The passphrases differ or are shorter than 12 characters; try again." >/dev/console
              done
              # systemd-ask-password ends its answer with a newline; the boot prompt does not.
              head -c -1 "$secrets/passphrase" >"$secrets/boot"
              for volume in "$root_part" "$data_part"; do
                cryptsetup luksAddKey --batch-mode --key-file "$secrets/recovery" "$volume" "$secrets/boot"
              done
            fi
            root_dev=/dev/mapper/osiris-root
            data_dev=/dev/mapper/osiris-data
          ''
        else
          ''
            root_dev=$root_part
            data_dev=$data_part
          ''
      }
      mkfs.ext4 -q -F -L osiris-root "$root_dev"
      mkfs.ext4 -q -F -L osiris-data "$data_dev"
      udevadm settle

      mkdir -p /mnt
      mount "$root_dev" /mnt
      mkdir -p /mnt/boot /mnt/var/lib/osiris
      mount -o umask=0077 "$esp_part" /mnt/boot
      mount "$data_dev" /mnt/var/lib/osiris

      nixos-install --system ${system} --no-root-passwd --no-channel-copy --option substituters ""

      rm -f /mnt/boot/loader/entries/nixos-generation-*.conf
      ${
        if cfg.signedUki != null then
          ''
            # Secure Boot: the vendor-signed unified kernel image (kernel, initrd and command line
            # in one signed binary), a boot loader specification type #2 entry.
            rm -rf /mnt/boot/EFI/nixos
            mkdir -p /mnt/boot/EFI/Linux
            cp ${cfg.signedUki} /mnt/boot/EFI/Linux/osiris_${cfg.release}.efi
          ''
        else
          ''
            # The first boot entry in the updater's format, blessed (no counter): the updater's
            # entries sort after it only by version, never by name.
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
          ''
      }
      printf 'timeout 0\nconsole-mode keep\neditor no\n' > /mnt/boot/loader/loader.conf
      sync
      umount -R /mnt
      ${lib.optionalString cfg.encrypt ''
        cryptsetup close osiris-data
        cryptsetup close osiris-root
        # Shown once, on the console only (never in the journal), and not stored anywhere.
        {
          echo
          echo "================================ RECOVERY KEY ================================"
          echo " Write this key down and keep it with the site's records, NOT with the appliance."
          echo " It opens the disks when the TPM refuses (new mainboard, firmware reset, moved disk)."
          echo " It is stored nowhere and will not be shown again."
          echo
          echo "     $recovery"
          echo "=============================================================================="
          echo
        } >/dev/console
        if ! grep -qw osiris.install.confirm=no /proc/cmdline; then
          last=''${recovery##*-}
          until [ "$(systemd-ask-password --timeout=0 --echo=yes "Type the LAST group of the recovery key to confirm you wrote it down:")" = "$last" ]; do
            echo "That is not the last group; read the key again." >/dev/console
          done
        fi
      ''}
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
    encrypt = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Encrypt the root and data partitions (LUKS2) and enroll the TPM2; set from the appliance's
        `services.osiris.diskEncryption.enable`, which must agree (its initrd opens the volumes).
      '';
    };
    tpm2Pcrs = lib.mkOption {
      type = lib.types.nonEmptyListOf (lib.types.ints.between 0 23);
      default = [ 7 ];
      description = "PCRs the TPM2 enrollment is bound to (the appliance's `diskEncryption.tpm2Pcrs`).";
    };
    allowNoTpm = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Install on a machine without a TPM 2.0, with a boot passphrase (the appliance's `diskEncryption.allowNoTpm`).";
    };
    secureBoot = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "The appliance boots only signed UKIs (its `services.osiris.secureBoot.enable`): refuse to install with Secure Boot off.";
    };
    signedUki = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      description = ''
        The vendor-signed unified kernel image of `system` (its `system.build.uki`, signed outside
        Nix with `sbsign`), installed as {file}`EFI/Linux/osiris_<release>.efi` instead of a type #1
        entry. Required when `secureBoot` is set. A signature is public; the key never enters Nix.
      '';
    };
    ukiBoot = lib.mkOption {
      type = lib.types.bool;
      default = cfg.secureBoot;
      defaultText = lib.literalExpression "config.osiris.installer.secureBoot";
      description = ''
        Boot the ISO (UEFI only, CD or USB) from the installer's own unified kernel image placed as
        {file}`EFI/BOOT/BOOTX64.EFI` in its El Torito EFI image, instead of NixOS's GRUB with a
        separate kernel and initrd, so that `osiris-release sign-iso` can make it boot under Secure
        Boot. Its command line is fixed (a signed UKI ignores one given at boot): a disk that
        already has partitions is erased only after ERASE is typed on the console.
      '';
    };
    rootGiB = lib.mkOption {
      type = lib.types.ints.positive;
      default = 24;
      description = "Size of the system partition (the Nix store holding two systems).";
    };
  };

  config = {
    assertions = [
      {
        assertion = cfg.secureBoot -> cfg.signedUki != null;
        message = "osiris.installer.secureBoot needs osiris.installer.signedUki: the appliance boots only the vendor-signed UKI.";
      }
    ];
    system.stateVersion = "25.11";
    # NixOS's GRUB boot, unless the ISO boots its own UKI (below); no legacy BIOS boot then: the
    # installer refuses to run without Secure Boot, which BIOS boot never has.
    isoImage.makeEfiBootable = !cfg.ukiBoot;
    isoImage.makeBiosBootable = lib.mkIf cfg.ukiBoot false;
    isoImage.grubTheme = lib.mkIf cfg.ukiBoot null;
    # The UKI carries the kernel and initrd: their separate copies (for GRUB's menu) would only
    # make the image bigger.
    isoImage.showConfiguration = lib.mkIf cfg.ukiBoot false;
    isoImage.makeUsbBootable = true;
    system.build.isoImage = lib.mkIf cfg.ukiBoot (
      lib.mkForce (
        pkgs.callPackage "${modulesPath}/../lib/make-iso9660-image.nix" {
          inherit (config.isoImage) compressImage volumeID squashfsCompression;
          isoName = "${config.image.baseName}.iso";
          contents = config.isoImage.contents ++ [
            {
              source = ukiEfiImage;
              target = "/boot/efi.img";
            }
          ];
          squashfsContents = config.isoImage.storeContents;
          efiBootable = true;
          efiBootImage = "boot/efi.img";
          # The MBR and GPT of a hybrid image, so the ISO written to a USB stick boots too (the
          # EFI image becomes a GPT partition); the MBR's boot code is never run under UEFI.
          usbBootable = true;
          isohybridMbrImage = "${pkgs.syslinux}/share/syslinux/isohdpfx.bin";
        }
      )
    );
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
