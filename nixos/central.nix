# services.osiris-central: Central Command, the MSP partner's server, on a local PostgreSQL (or
# an external one), with its TOML configuration validated at build time and a hardened unit.
# The link CA and the witness key are made once, on first start, in the state directory.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.osiris-central;
  settingsFormat = pkgs.formats.toml { };
  stateDir = "/var/lib/osiris-central";
  configFile = settingsFormat.generate "central.toml" (
    lib.recursiveUpdate {
      link = {
        ca_dir = "${stateDir}/link-ca";
        witness_key_file = "${stateDir}/witness.key";
      };
    } cfg.settings
  );
  validatedConfig =
    pkgs.runCommand "osiris-central.toml"
      {
        nativeBuildInputs = [ cfg.package ];
        preferLocalBuild = true;
      }
      ''
        osiris-central --config ${configFile} validate
        cp ${configFile} $out
      '';
  central = "${cfg.package}/bin/osiris-central --config ${validatedConfig}";
in
{
  options.services.osiris-central = {
    enable = lib.mkEnableOption "OsirisCare Central Command (osiris-central)";

    package = lib.mkPackageOption pkgs "osiris" { };

    witnessName = lib.mkOption {
      type = lib.types.strMatching "[^ +]+";
      description = ''
        The witness's name in its checkpoint cosignatures, a schema-less URL (e.g.
        `central.example-msp.com/witness`). Fixed at first start: auditors pin the key.
      '';
    };

    createLocalDatabase = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Run PostgreSQL on this machine (`services.postgresql`) with a database and a role named
        `osiris-central`, reached over the Unix socket with peer authentication (no password).
        Off: set `settings.database.url` (and `password_file`) to an external server.
      '';
    };

    settings = lib.mkOption {
      default = { };
      description = ''
        The configuration, rendered to TOML (see `crates/central/src/config.rs`): `listen`,
        `[tls]` `cert_file`/`key_file` (required unless listening on loopback), `[database]`,
        `metrics_listen`. Never holds a secret, only paths to 0600 files.
      '';
      type = lib.types.submodule {
        freeformType = settingsFormat.type;
        options.listen = lib.mkOption {
          type = lib.types.str;
          default = "127.0.0.1:8443";
          description = "Address and port to serve on.";
        };
      };
    };
  };

  config = lib.mkIf cfg.enable {
    services.osiris-central.settings.database = lib.mkIf cfg.createLocalDatabase {
      url = "postgres://osiris-central@%2Frun%2Fpostgresql/osiris-central";
    };

    services.postgresql = lib.mkIf cfg.createLocalDatabase {
      enable = true;
      ensureDatabases = [ "osiris-central" ];
      ensureUsers = [
        {
          name = "osiris-central";
          ensureDBOwnership = true;
        }
      ];
    };

    users.users.osiris-central = {
      isSystemUser = true;
      group = "osiris-central";
      home = stateDir;
    };
    users.groups.osiris-central = { };

    systemd.services.osiris-central = {
      description = "OsirisCare Central Command";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ] ++ lib.optional cfg.createLocalDatabase "postgresql.service";
      requires = lib.optional cfg.createLocalDatabase "postgresql.service";
      wants = [ "network-online.target" ];
      # The link CA and the witness key, once; never replaced afterwards.
      preStart = ''
        if [ ! -e ${stateDir}/witness.key ]; then
          ${central} link init --witness-name ${lib.escapeShellArg cfg.witnessName}
        fi
      '';
      serviceConfig = {
        ExecStart = "${central} serve";
        User = "osiris-central";
        Group = "osiris-central";
        StateDirectory = "osiris-central";
        StateDirectoryMode = "0700";
        UMask = "0077";
        Restart = "on-failure";
        RestartSec = 5;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        NoNewPrivileges = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RestrictAddressFamilies = [
          "AF_UNIX"
          "AF_INET"
          "AF_INET6"
        ];
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged"
          "~@resources"
        ];
        CapabilityBoundingSet = [ "" ];
        AmbientCapabilities = lib.optional (lib.hasSuffix ":443" cfg.settings.listen) "CAP_NET_BIND_SERVICE";
      };
    };
  };

  meta.maintainers = [ ];
}
