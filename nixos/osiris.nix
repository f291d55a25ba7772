# services.osiris: the OsirisCare daemon (osirisd) with its TOML configuration, validated at
# build time, and a fully hardened unit.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.osiris;
  settingsFormat = pkgs.formats.toml { };
  configFile = settingsFormat.generate "appliance.toml" cfg.settings;

  # The root helpers that apply the console's settings: no network, no home, read-only system, and only the
  # capabilities setpriv needs to drop to the daemon's user (plus reading the daemon's 0700 directory).
  helperPath = [
    pkgs.bash
    pkgs.coreutils
    pkgs.util-linux
    config.systemd.package
  ];
  helperSandbox = {
    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    PrivateNetwork = true;
    NoNewPrivileges = true;
    CapabilityBoundingSet = [
      "CAP_SETUID"
      "CAP_SETGID"
      "CAP_SETPCAP"
    ];
    RestrictAddressFamilies = [ "AF_UNIX" ];
    SystemCallArchitectures = "native";
    UMask = "0022";
  };

  # A bad configuration fails the build, not the boot.
  validatedConfig =
    pkgs.runCommand "osiris-appliance.toml"
      {
        nativeBuildInputs = [ cfg.package ];
        preferLocalBuild = true;
      }
      ''
        osiris config validate ${configFile}
        cp ${configFile} $out
      '';
in
{
  options.services.osiris = {
    enable = lib.mkEnableOption "the OsirisCare compliance daemon (osirisd)";

    package = lib.mkPackageOption pkgs "osiris" { };

    settings = lib.mkOption {
      description = ''
        The appliance configuration, rendered to {file}`/etc/osiris/appliance.toml`.
        See `crates/config` for every key; secrets are never written here, only paths to
        0600 files (or the `credentials-key` systemd credential).
      '';
      default = { };
      type = lib.types.submodule {
        freeformType = settingsFormat.type;
        options = {
          site = lib.mkOption {
            type = lib.types.strMatching "[A-Za-z0-9._-]{1,64}";
            description = "Site identifier written into every evidence bundle.";
            example = "smith-family-practice";
          };
          data_dir = lib.mkOption {
            type = lib.types.str;
            default = "/var/lib/osiris";
            description = "Database, keys and evidence. Must stay under {file}`/var/lib/osiris`.";
          };
          daemon = lib.mkOption {
            default = { };
            description = "How osirisd schedules its cycles and serves its local API.";
            type = lib.types.submodule {
              freeformType = settingsFormat.type;
              options = {
                socket = lib.mkOption {
                  type = lib.types.str;
                  default = "/run/osiris/api.sock";
                  description = "The local API's Unix socket.";
                };
                socket_group = lib.mkOption {
                  type = lib.types.str;
                  default = "osiris";
                  description = "Group allowed to use the socket (mode 0660); the console runs in it.";
                };
              };
            };
          };
        };
      };
      example = lib.literalExpression ''
        {
          site = "smith-family-practice";
          target = [
            { name = "fileserver"; platform = "linux"; transport = "ssh";
              address = "10.0.0.5"; user = "osiris"; key_file = "/var/lib/osiris/secrets/fileserver.key"; }
          ];
        }
      '';
    };

    credentialsKeyFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = "/var/lib/osiris-secrets/credentials.key";
      description = ''
        File holding the credential vault's key, passed to osirisd as the systemd credential
        `credentials-key` (never through the environment or the Nix store). Must not be in the
        store: give a string path, not a Nix path literal.
      '';
    };

    mountExportMedia = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Mount a USB stick with a FAT or exFAT filesystem (what an auditor hands over) when it is
        plugged in, at {file}`/media/usb-<kernel name>`, writable by the daemon's user only and
        without set-uid, devices or executables, so the console's "export evidence kit" can write
        onto it (osirisd writes kits only below `daemon.export_roots`, default /media). It is
        unmounted when it is pulled out.
      '';
    };

    applyConsoleSettings = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Apply the network and time-zone choices made on the console's setup wizard.
        osirisd writes them to {file}`<data_dir>/network/10-osiris.network` (systemd-networkd)
        and {file}`<data_dir>/timezone`; path units install them, so the unprivileged daemon
        never changes the system itself. Turns on systemd-networkd and leaves the time zone
        settable at run time.
      '';
    };

    watchdogSec = lib.mkOption {
      type = lib.types.ints.positive;
      default = 60;
      description = "systemd watchdog: osirisd must send WATCHDOG=1 at least this often.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion =
          cfg.credentialsKeyFile == null
          || !lib.hasPrefix builtins.storeDir (toString cfg.credentialsKeyFile);
        message = "services.osiris.credentialsKeyFile must not be in the Nix store (it is world-readable there); use a string path.";
      }
      {
        assertion = lib.hasPrefix "/var/lib/osiris" cfg.settings.data_dir;
        message = "services.osiris.settings.data_dir must be under /var/lib/osiris: the unit can write nowhere else.";
      }
      {
        assertion = lib.hasPrefix "/run/osiris/" cfg.settings.daemon.socket;
        message = "services.osiris.settings.daemon.socket must be under /run/osiris/, the unit's runtime directory.";
      }
    ];

    environment.systemPackages = [ cfg.package ];
    environment.etc."osiris/appliance.toml".source = validatedConfig;

    # The agent gateway (`[agents] listen = "ADDR:PORT"`): endpoint agents connect in over mutual
    # TLS, so its port is open to the LAN when agents are enabled and closed otherwise.
    networking.firewall.allowedTCPPorts = lib.optional (cfg.settings ? agents) (
      lib.toInt (lib.last (lib.splitString ":" cfg.settings.agents.listen))
    );

    users.users.osiris = {
      isSystemUser = true;
      group = "osiris";
      home = "/var/lib/osiris";
      description = "OsirisCare daemon";
    };
    users.groups.osiris = { };

    # USB sticks for evidence kits (see mountExportMedia): udev asks systemd to mount them; the
    # mount unit is bound to the device, so pulling the stick stops it.
    systemd.tmpfiles.rules = lib.mkIf cfg.mountExportMedia [ "d /media 0755 root root -" ];
    services.udev.extraRules = lib.mkIf cfg.mountExportMedia ''
      ACTION=="add", SUBSYSTEM=="block", ENV{ID_BUS}=="usb", ENV{ID_FS_USAGE}=="filesystem", ENV{ID_FS_TYPE}=="vfat|exfat", RUN{program}+="${config.systemd.package}/bin/systemd-mount --no-block --collect --type=$env{ID_FS_TYPE} --options=uid=osiris,gid=osiris,umask=0077,nosuid,nodev,noexec $devnode /media/usb-%k"
    '';

    # The wizard's network and time-zone steps (see applyConsoleSettings).
    networking.useNetworkd = lib.mkIf cfg.applyConsoleSettings (lib.mkDefault true);
    time.timeZone = lib.mkIf cfg.applyConsoleSettings (lib.mkDefault null);

    systemd.paths.osiris-apply-network = lib.mkIf cfg.applyConsoleSettings {
      description = "Watch the network settings chosen on the OsirisCare console";
      wantedBy = [ "multi-user.target" ];
      pathConfig.PathChanged = "${cfg.settings.data_dir}/network/10-osiris.network";
    };
    systemd.paths.osiris-apply-timezone = lib.mkIf cfg.applyConsoleSettings {
      description = "Watch the time zone chosen on the OsirisCare console";
      wantedBy = [ "multi-user.target" ];
      pathConfig.PathChanged = "${cfg.settings.data_dir}/timezone";
    };

    # Both helpers run as root but read the daemon's files only with the daemon's privileges and accept only
    # the grammar osirisd writes (console-settings.sh), so a compromised daemon can neither copy a root-only
    # file out nor push arbitrary network configuration.
    systemd.services.osiris-apply-network = lib.mkIf cfg.applyConsoleSettings {
      description = "Apply the network settings chosen on the OsirisCare console";
      serviceConfig = helperSandbox // {
        Type = "oneshot";
        # /run/systemd always exists (a missing ReadWritePaths entry fails the unit); network/ may not yet.
        ReadWritePaths = [ "/run/systemd" ];
      };
      path = helperPath;
      script = ''
        mkdir -p /run/systemd/network
        bash ${./console-settings.sh} network \
          ${cfg.settings.data_dir}/network/10-osiris.network /run/systemd/network/10-osiris.network osiris
        networkctl reload
      '';
    };
    systemd.services.osiris-apply-timezone = lib.mkIf cfg.applyConsoleSettings {
      description = "Apply the time zone chosen on the OsirisCare console";
      serviceConfig = helperSandbox // {
        Type = "oneshot";
      };
      path = helperPath;
      script = ''
        tz=$(bash ${./console-settings.sh} timezone ${cfg.settings.data_dir}/timezone osiris)
        [ -z "$tz" ] || timedatectl set-timezone "$tz"
      '';
    };

    systemd.services.osirisd = {
      description = "OsirisCare compliance daemon";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      restartTriggers = [ validatedConfig ];
      # kinit, for the workstations' Kerberos logins.
      path = [ pkgs.krb5 ];

      serviceConfig = {
        Type = "notify";
        NotifyAccess = "main";
        ExecStart = "${lib.getExe' cfg.package "osirisd"} --config /etc/osiris/appliance.toml";
        # Kerberos logins to the workstations: osirisd's own krb5 configuration and ticket caches
        # (written at start from [directory]); set here so the daemon need not re-execute itself.
        Environment = [
          "KRB5_CONFIG=/var/lib/osiris/kerberos/krb5.conf"
          "OSIRIS_KERBEROS_DIR=/var/lib/osiris/kerberos"
        ];
        Restart = "on-failure";
        RestartSec = 5;
        # 78 (EX_CONFIG): a bad configuration does not get better by restarting.
        RestartPreventExitStatus = 78;
        # One descriptor per connected endpoint agent (10,000 measured) besides targets and files;
        # systemd's default of 1,024 would stop the gateway at about a thousand agents.
        LimitNOFILE = 65536;
        WatchdogSec = cfg.watchdogSec;
        TimeoutStopSec = 60;

        User = "osiris";
        Group = "osiris";
        StateDirectory = "osiris";
        StateDirectoryMode = "0700";
        RuntimeDirectory = "osiris";
        # The console (group osiris) must reach the socket inside; the socket itself is 0660.
        RuntimeDirectoryMode = "0750";
        LoadCredential = lib.optional (
          cfg.credentialsKeyFile != null
        ) "credentials-key:${toString cfg.credentialsKeyFile}";

        UMask = "0077";
        NoNewPrivileges = true;
        CapabilityBoundingSet = [ "" ];
        AmbientCapabilities = [ "" ];
        ProtectSystem = "strict";
        # Evidence kits go onto USB sticks mounted below these (daemon.export_roots); the daemon
        # refuses any other destination. "-": absent directories do not fail the unit.
        ReadWritePaths = [
          "-/media"
          "-/run/media"
        ];
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        DevicePolicy = "closed";
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectProc = "invisible";
        # ProcSubset=pid is not set: the self-scan of the appliance reads /proc/sys and /proc/mounts.
        RestrictAddressFamilies = [
          "AF_UNIX"
          "AF_INET"
          "AF_INET6"
        ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RemoveIPC = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged"
          "~@resources"
        ];
        SystemCallErrorNumber = "EPERM";
        # PrivateUsers is not set: the socket's group must be the real `osiris` group for the console.
        # PrivateNetwork/IPAddressDeny are not set: scanning needs the site LAN; the egress
        # firewall (services.osiris.hardening.egress) limits where connections may go.
      };
    };
  };

  meta.maintainers = [ ];
}
