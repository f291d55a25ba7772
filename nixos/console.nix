# services.osiris.console: the on-site console (osiris-console) on a virtual terminal instead of
# a login prompt. Nobody can log in on that terminal; the console talks to osirisd over the
# local API socket only.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.osiris.console;
in
{
  options.services.osiris.console = {
    enable = lib.mkEnableOption "the OsirisCare console on a virtual terminal";

    package = lib.mkPackageOption pkgs "osiris" { };

    tty = lib.mkOption {
      type = lib.types.strMatching "tty[0-9]+";
      default = "tty1";
      description = "Virtual terminal the console owns (its getty is disabled).";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = config.services.osiris.enable;
        message = "services.osiris.console needs services.osiris.enable: it is a client of osirisd's local API.";
      }
    ];

    users.users.osiris-console = {
      isSystemUser = true;
      # Primary group `osiris`: the API socket is 0660 osiris:osiris, and osirisd checks each
      # peer's group from SO_PEERCRED. It cannot read the console's supplementary groups from
      # /proc (its unit has ProtectProc=invisible), so membership must be the primary group.
      group = "osiris";
      description = "OsirisCare console";
    };

    # No login prompt on the console's terminal: the console is the only program there.
    systemd.services."getty@${cfg.tty}".enable = false;
    systemd.services."autovt@${cfg.tty}".enable = false;

    systemd.services.osiris-console = {
      description = "OsirisCare console on ${cfg.tty}";
      wantedBy = [ "multi-user.target" ];
      after = [
        "osirisd.service"
        "systemd-user-sessions.service"
      ];
      conflicts = [ "getty@${cfg.tty}.service" ];
      serviceConfig = {
        ExecStart = lib.getExe' cfg.package "osiris-console";
        User = "osiris-console";
        Group = "osiris";
        StandardInput = "tty-force";
        StandardOutput = "tty";
        StandardError = "journal";
        TTYPath = "/dev/${cfg.tty}";
        TTYReset = true;
        TTYVHangup = true;
        TTYVTDisallocate = true;
        Restart = "always";
        RestartSec = 1;
        Environment = [ "TERM=linux" ];

        UMask = "0077";
        NoNewPrivileges = true;
        CapabilityBoundingSet = [ "" ];
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        # PrivateDevices is not set: the console needs its /dev/ttyN.
        DeviceAllow = [ "/dev/${cfg.tty} rw" ];
        DevicePolicy = "closed";
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectProc = "invisible";
        ProcSubset = "pid";
        # Only the local API socket: the console never talks to the network.
        RestrictAddressFamilies = [ "AF_UNIX" ];
        PrivateNetwork = true;
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged"
          "~@resources"
        ];
      };
    };
  };

  meta.maintainers = [ ];
}
