# services.osiris.updates: signed atomic image updates. A timer fetches the vendor-signed
# manifest; `osiris update apply` verifies the closure against the pinned keys, imports it,
# and stages it as the next systemd-boot entry with boot counting (with Secure Boot: the release's
# signed UKI as a type #2 entry); after the reboot the health
# gate marks it good or rolls back. See docs/UPDATES.md.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.osiris.updates;
  osiris = config.services.osiris;
  settingsFormat = pkgs.formats.toml { };
  stateDir = "/var/lib/osiris-update";

  updateConfig = settingsFormat.generate "update.toml" {
    manifest_url = cfg.manifestUrl;
    vendor_key = cfg.vendorKey;
    cache_keys = cfg.cacheKeys;
    installed_version = cfg.release;
    state_dir = stateDir;
    esp = config.boot.loader.efi.efiSysMountPoint;
    efivars = "/sys/firmware/efi/efivars";
    tries = cfg.tries;
    health_deadline_secs = cfg.healthDeadlineSec;
    appliance_config = "/etc/osiris/appliance.toml";
    nix = "${config.nix.package}/bin/nix";
    # With Secure Boot (nixos/secure-boot.nix, which may not be imported), manifests must name a
    # signed UKI and it is staged as a type #2 boot entry (docs/UPDATES.md).
    secure_boot = config.services.osiris.secureBoot.enable or false;
  };

  keyType = lib.types.strMatching "[A-Za-z0-9._-]+:[A-Za-z0-9+/]{43}=";

  # Root is needed to write the ESP and the Nix store; everything else is locked down.
  commonServiceConfig = {
    Type = "oneshot";
    UMask = "0077";
    NoNewPrivileges = true;
    ProtectSystem = "strict";
    ReadWritePaths = [
      "/nix"
      stateDir
      config.boot.loader.efi.efiSysMountPoint
      osiris.settings.data_dir
    ];
    StateDirectory = "osiris-update";
    # 0711: the daemon (unprivileged) reads state.json (0644: the phase and the public manifest)
    # and owns spool/, where update records wait for it to seal them; nothing else is listable.
    StateDirectoryMode = "0711";
    ProtectHome = true;
    PrivateTmp = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectClock = true;
    ProtectHostname = true;
    RestrictAddressFamilies = [
      "AF_UNIX"
      "AF_INET"
      "AF_INET6"
    ];
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    SystemCallArchitectures = "native";
    # Not @system-service alone: `nix copy` sets ownership and times in the store (@chown is in
    # @system-service; @privileged is not needed).
    SystemCallFilter = [ "@system-service" ];
  };
in
{
  options.services.osiris.updates = {
    enable = lib.mkEnableOption "signed atomic OsirisCare image updates with automatic rollback";

    manifestUrl = lib.mkOption {
      type = lib.types.strMatching "(https|file)://.+";
      example = "https://updates.osiriscare.example/stable/manifest.json";
      description = ''
        Where the vendor-signed update manifest is published. An appliance linked to its
        partner's Central Command takes the release the partner's staged rollout offers it with
        "file:///var/lib/osiris-update/spool/offered-manifest.json" (osirisd writes it there; the
        updater verifies it against vendorKey as it would any manifest).
      '';
    };

    vendorKey = lib.mkOption {
      type = keyType;
      example = "osiris-vendor-1:6xwSS3Dw1IQepaQqe6a6F20OoM+Nyhc4pqtoyc0EDaA=";
      description = "The pinned Ed25519 key (`name:base64`) that signs update manifests.";
    };

    cacheKeys = lib.mkOption {
      type = lib.types.nonEmptyListOf keyType;
      example = [ "osiris-cache-1:6xwSS3Dw1IQepaQqe6a6F20OoM+Nyhc4pqtoyc0EDaA=" ];
      description = ''
        The pinned narinfo signing keys. Every store path of an update must carry a signature
        by one of them; a manifest cannot add keys.
      '';
    };

    release = lib.mkOption {
      type = lib.types.strMatching "[0-9]+\\.[0-9]+\\.[0-9]+";
      example = "1.4.2";
      description = "The OsirisCare release this system is; updates must be newer.";
    };

    tries = lib.mkOption {
      type = lib.types.ints.between 1 10;
      default = 3;
      description = "Boot attempts a new system gets (systemd-boot `+N` counter) before the boot loader falls back.";
    };

    healthDeadlineSec = lib.mkOption {
      type = lib.types.ints.positive;
      default = 900;
      description = "After booting an update, the health gate must pass within this many seconds or the appliance rolls back.";
    };

    schedule = lib.mkOption {
      type = lib.types.str;
      default = "daily";
      description = "When to look for an update (systemd `OnCalendar=`).";
    };

    autoApply = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Apply a verified update and reboot into it without an operator (otherwise only check).";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = config.boot.loader.systemd-boot.enable;
        message = "services.osiris.updates stages boot entries for systemd-boot: set boot.loader.systemd-boot.enable.";
      }
      {
        assertion = osiris.enable;
        message = "services.osiris.updates needs services.osiris.enable: its health gate asks osirisd.";
      }
    ];

    environment.etc."osiris/update.toml".source = updateConfig;

    # Update records wait here for osirisd, which runs as `osiris` and seals them as evidence.
    systemd.tmpfiles.rules = [
      "d ${stateDir} 0711 root root -"
      "d ${stateDir}/spool 0700 osiris osiris -"
    ];
    systemd.services.osirisd.serviceConfig.ReadWritePaths = [ "${stateDir}/spool" ];

    # nix-daemon does the import's final signature check too: it trusts only the pinned keys,
    # and never substitutes from anywhere on its own.
    nix.settings.trusted-public-keys = cfg.cacheKeys;
    nix.settings.substituters = lib.mkForce [ ];

    systemd.services.osiris-update-check = {
      description = "Look for a signed OsirisCare update";
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      serviceConfig = commonServiceConfig // {
        ExecStart =
          if cfg.autoApply then
            "${lib.getExe osiris.package} update apply --reboot"
          else
            "${lib.getExe osiris.package} update check";
      };
    };

    systemd.timers.osiris-update-check = {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.schedule;
        RandomizedDelaySec = "1h";
        Persistent = true;
      };
    };

    # Once per boot: after an update's first boot, gate it on health, then bless it or roll back.
    systemd.services.osiris-update-gate = {
      description = "Health-gate a freshly booted OsirisCare update";
      wantedBy = [ "multi-user.target" ];
      after = [ "osirisd.service" ];
      wants = [ "osirisd.service" ];
      serviceConfig = commonServiceConfig // {
        ExecStart = "${lib.getExe osiris.package} update mark-good --wait --reboot";
        RemainAfterExit = true;
        # The verdict ("marked good" / "rolled back") also goes to the console.
        StandardOutput = "journal+console";
        TimeoutStartSec = cfg.healthDeadlineSec + 120;
        # Reading LoaderEntrySelected needs efivarfs.
        ReadOnlyPaths = [ "/sys/firmware/efi/efivars" ];
        SupplementaryGroups = [ "osiris" ];
      };
    };
  };

  meta.maintainers = [ ];
}
