# services.osiris.diskEncryption: the root and data volumes are LUKS2, unlocked in the systemd
# initrd by the TPM2 (bound to PCR 7, the Secure Boot policy), and the vault key and the evidence
# signing key exist on disk only as systemd credentials sealed to that TPM. The installer
# (iso/iso.nix) creates the volumes; this module unlocks them and seals the keys.
# See docs/DISK-ENCRYPTION.md.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.osiris.diskEncryption;
  osiris = config.services.osiris;
  updates = config.services.osiris.updates;

  # Outside the data directory, on the encrypted root volume; root only.
  secretsDir = "/var/lib/osiris-secrets";
  pcrs = lib.concatMapStringsSep "+" toString cfg.tpm2Pcrs;

  # Unlocked by the TPM; if the TPM refuses (another machine, changed Secure Boot keys, cleared
  # TPM), systemd-cryptsetup asks on the console for the recovery key (or, without a TPM, the
  # boot passphrase), trying one answer for both volumes.
  luksDevice = partLabel: {
    device = "/dev/disk/by-partlabel/${partLabel}";
    crypttabExtraOpts = [ "tpm2-device=auto" ];
  };

  # Every unit that opens the evidence store or the vault gets the sealed keys.
  loadSealedKeys = {
    LoadCredentialEncrypted = [
      "credentials-key:${secretsDir}/credentials-key.cred"
      "appliance-key:${secretsDir}/appliance-key.cred"
    ];
    # The store must take the signing key from the credential, never create a key file.
    Environment = [ "OSIRIS_APPLIANCE_KEY_CREDENTIAL=appliance-key" ];
  };
  keyUnits = [
    "osirisd.service"
  ]
  ++ lib.optionals updates.enable [
    "osiris-update-check.service"
    "osiris-update-gate.service"
  ];

  sealKeys = pkgs.writeShellApplication {
    name = "osiris-seal-keys";
    runtimeInputs = [
      pkgs.coreutils
      config.systemd.package
      osiris.package
    ];
    text = ''
      dir=${secretsDir}
      keys=${osiris.settings.data_dir}/keys
      with_key=${cfg.sealKeysWith}
      case "$with_key" in
        *tpm2*)
          if ! systemd-creds has-tpm2 >/dev/null; then
            ${
              if cfg.allowNoTpm then
                ''
                  echo "osiris-seal-keys: no usable TPM2; sealing with the host key only (it lies on the encrypted root volume)" >&2
                  with_key=host
                ''
              else
                ''
                  echo "osiris-seal-keys: no usable TPM2 (systemd-creds has-tpm2 failed); the keys stay unsealed and osirisd will not start. Enable the TPM in the firmware setup, or set services.osiris.diskEncryption.allowNoTpm." >&2
                  exit 1
                ''
            }
          fi
          ;;
      esac
      seal_args=(--with-key="$with_key")
      case "$with_key" in *tpm2*) seal_args+=(--tpm2-pcrs=${pcrs}) ;; esac

      # seal NAME LEGACY_FILE GENERATOR...: create $dir/NAME.cred once. A key left in the clear by
      # an older release is sealed and then removed; otherwise a new key is generated into the
      # pipe, so the clear key never touches a disk.
      seal() {
        local name=$1 legacy=$2 out="$dir/$1.cred"
        shift 2
        if [ -e "$out" ]; then
          return 0
        fi
        rm -f "$out.new"
        if [ -e "$legacy" ]; then
          systemd-creds encrypt --name="$name" "''${seal_args[@]}" "$legacy" "$out.new"
          if ! systemd-creds decrypt --name="$name" "$out.new" - | cmp -s - "$legacy"; then
            rm -f "$out.new"
            echo "osiris-seal-keys: sealed $name does not decrypt to $legacy; left it in the clear" >&2
            exit 1
          fi
        else
          "$@" | systemd-creds encrypt --name="$name" "''${seal_args[@]}" - "$out.new"
        fi
        sync "$out.new"
        mv "$out.new" "$out"
        sync "$dir"
        if [ -e "$legacy" ]; then
          shred -u "$legacy"
          echo "osiris-seal-keys: sealed $name from $legacy and removed the clear copy" >&2
        else
          echo "osiris-seal-keys: created $name, sealed with $with_key" >&2
        fi
      }
      seal credentials-key "$keys/credentials.key" head -c 32 /dev/urandom
      seal appliance-key "$keys/appliance.key" osiris signing-key generate
    '';
  };
in
{
  options.services.osiris.diskEncryption = {
    enable = lib.mkEnableOption ''
      LUKS2 root and data volumes unlocked by the TPM2 in the systemd initrd, and the vault key
      and evidence signing key as TPM2-sealed systemd credentials (the installer creates the volumes)
    '';

    tpm2Pcrs = lib.mkOption {
      type = lib.types.nonEmptyListOf (lib.types.ints.between 0 23);
      default = [ 7 ];
      description = ''
        PCRs the TPM2 enrollment of the volumes and the sealed keys are bound to. PCR 7 (the
        Secure Boot state and the certificates that verified the boot chain) stays the same across
        vendor-signed image updates; PCRs that measure the kernel or initrd (4, 9, 11) change with
        every update and would make each update ask for the recovery key.
        Read by the installer when it enrolls the TPM.
      '';
    };

    allowNoTpm = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = ''
        Install and run on a machine without a TPM 2.0. The installer then asks for a boot
        passphrase that must be typed on the console at every start, and the keys are sealed with
        the host key on the encrypted root volume only. Without this, the installer refuses such a
        machine.
      '';
    };

    sealKeysWith = lib.mkOption {
      type = lib.types.enum [
        "host+tpm2"
        "tpm2"
        "host"
      ];
      default = "host+tpm2";
      description = ''
        `systemd-creds encrypt --with-key=` for the vault key and the signing key.
        `host+tpm2` needs both this machine's TPM and the host secret on the encrypted root volume:
        a new mainboard or a cleared TPM makes both keys unrecoverable (docs/DISK-ENCRYPTION.md,
        "Recovery"). `host` survives that, protected only by the volume encryption.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = osiris.enable;
        message = "services.osiris.diskEncryption seals osirisd's keys: enable services.osiris.";
      }
      {
        assertion = osiris.credentialsKeyFile == null;
        message = "services.osiris.diskEncryption seals the vault key itself; leave services.osiris.credentialsKeyFile unset.";
      }
      {
        assertion = lib.elem 7 cfg.tpm2Pcrs;
        message = "services.osiris.diskEncryption.tpm2Pcrs must include 7: without the Secure Boot state, any boot chain gets the keys.";
      }
      {
        assertion = !config.boot.loader.systemd-boot.editor;
        message = "services.osiris.diskEncryption: the boot loader's editor would let anyone at the console change the kernel command line; set boot.loader.systemd-boot.editor = false.";
      }
    ];

    # systemd-cryptsetup in the initrd is what reads the TPM2 token (crypttab `tpm2-device=`).
    boot.initrd.systemd.enable = true;
    boot.initrd.systemd.tpm2.enable = true;
    boot.initrd.luks.devices = {
      osiris-root = luksDevice "osiris-root";
      osiris-data = luksDevice "osiris-data";
    };
    environment.systemPackages = [ pkgs.cryptsetup ];

    systemd.services = {
      # Runs at every boot; does something only on the first one (or after a migration).
      osiris-seal-keys = {
        description = "Create the OsirisCare vault and signing keys, sealed to this appliance's TPM2";
        wantedBy = [ "multi-user.target" ];
        requiredBy = keyUnits;
        before = keyUnits;
        after = [
          "local-fs.target"
          "tpm2.target"
        ];
        unitConfig.RequiresMountsFor = [
          secretsDir
          osiris.settings.data_dir
        ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = lib.getExe sealKeys;
          StateDirectory = "osiris-secrets";
          StateDirectoryMode = "0700";
          UMask = "0077";
          NoNewPrivileges = true;
          ProtectSystem = "strict";
          # Writes the sealed keys, removes clear keys left by older releases, and creates the host
          # secret (/var/lib/systemd/credential.secret) on first use. The data directory may not
          # exist yet on a first boot without a data volume ("-": then it is skipped).
          ReadWritePaths = [
            "-${osiris.settings.data_dir}"
            "/var/lib/systemd"
          ];
          ProtectHome = true;
          PrivateTmp = true;
          PrivateNetwork = true;
          # PrivateDevices is not set: sealing needs /dev/tpmrm0.
          DevicePolicy = "closed";
          DeviceAllow = [ "/dev/tpmrm0 rw" ];
          ProtectKernelTunables = true;
          ProtectKernelModules = true;
          ProtectKernelLogs = true;
          ProtectControlGroups = true;
          ProtectClock = true;
          ProtectHostname = true;
          RestrictAddressFamilies = [ "AF_UNIX" ];
          RestrictNamespaces = true;
          RestrictRealtime = true;
          RestrictSUIDSGID = true;
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          SystemCallArchitectures = "native";
          SystemCallFilter = [ "@system-service" ];
        };
      };
    }
    // lib.genAttrs (map (unit: lib.removeSuffix ".service" unit) keyUnits) (_: {
      serviceConfig = loadSealedKeys;
    });
  };

  meta.maintainers = [ ];
}
