# services.osiris.hardening: the appliance's host hardening. An nftables egress firewall
# (outbound default-drop except DHCP, DNS and NTP to the site LAN or the configured servers, the
# configured Central and update endpoints, and the site LAN for scanning), no inbound ports, SSH off, and a locked-down base system.
{
  config,
  lib,
  ...
}:
let
  cfg = config.services.osiris.hardening;
  egress = cfg.egress;

  isV6 = lib.hasInfix ":";
  lan4 = lib.filter (net: !isV6 net) egress.lan;
  lan6 = lib.filter isV6 egress.lan;
  dns4 = lib.filter (net: !isV6 net) egress.dnsServers;
  dns6 = lib.filter isV6 egress.dnsServers;
  ntp4 = lib.filter (net: !isV6 net) egress.ntpServers;
  ntp6 = lib.filter isV6 egress.ntpServers;

  # nftables rejects an empty `elements = { }`: declare sets, fill them only when non-empty.
  set = name: type: elements: ''
    set ${name} {
      type ${type}
      flags interval
      ${lib.optionalString (elements != [ ]) "elements = { ${lib.concatStringsSep ", " elements} }"}
    }
  '';

  ports = list: "{ ${lib.concatMapStringsSep ", " toString list} }";

  endpointRule =
    endpoint:
    let
      family = if isV6 endpoint.address then "ip6" else "ip";
    in
    ''${family} daddr ${endpoint.address} tcp dport ${ports endpoint.ports} accept comment "${endpoint.comment}"'';

  endpointType = lib.types.submodule {
    options = {
      address = lib.mkOption {
        type = lib.types.str;
        example = "203.0.113.0/24";
        description = "IPv4 or IPv6 address or CIDR (nftables cannot match host names).";
      };
      ports = lib.mkOption {
        type = lib.types.nonEmptyListOf lib.types.port;
        default = [ 443 ];
        description = "TCP ports allowed to that address.";
      };
      comment = lib.mkOption {
        type = lib.types.strMatching "[A-Za-z0-9 ._/-]*";
        default = "";
        description = "Why this endpoint is allowed (shown in `nft list ruleset`).";
      };
    };
  };
in
{
  options.services.osiris.hardening = {
    enable = lib.mkEnableOption "the OsirisCare appliance host hardening";

    egress = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = "Drop outbound traffic except what the appliance needs.";
      };
      lan = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [ ];
        example = [ "10.0.0.0/24" ];
        description = "Site networks (CIDR) the appliance scans: SSH, WinRM, LDAP(S), Kerberos, DNS.";
      };
      lanPorts = lib.mkOption {
        type = lib.types.listOf lib.types.port;
        default = [
          22
          53
          88
          389
          636
          5985
          5986
        ];
        description = "TCP ports allowed towards {option}`services.osiris.hardening.egress.lan`.";
      };
      dnsServers = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [ ];
        example = [ "9.9.9.9" ];
        description = ''
          Resolvers outside {option}`services.osiris.hardening.egress.lan` the appliance may query
          (DNS to the site LAN is always allowed). DNS to any other host is dropped, so a
          compromised process cannot tunnel data out through arbitrary name servers.
        '';
      };
      ntpServers = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [ ];
        example = [ "129.6.15.28" ];
        description = ''
          NTP servers outside the site LAN (addresses or CIDRs; nftables cannot match host names).
          NTP to the site LAN is always allowed, and so is NTP from systemd-timesyncd, whose pool
          names resolve to changing addresses; NTP from any other process to any other host is
          dropped.
        '';
      };
      endpoints = lib.mkOption {
        type = lib.types.listOf endpointType;
        default = [ ];
        example = lib.literalExpression ''
          [
            { address = "198.51.100.10"; comment = "OsirisCare Central"; }
            { address = "198.51.100.20"; comment = "update cache"; }
            { address = "10.0.0.25"; ports = [ 587 ]; comment = "clinic SMTP relay"; }
          ]
        '';
        description = ''
          Further destinations outside the LAN: Central, the update cache, OpenTimestamps
          calendars, SMTP relays and webhook receivers, and for `[[cloud]]` tenants Microsoft
          Entra ID's sign-in and Microsoft Graph (the address ranges Microsoft publishes for them).
        '';
      };
      logDrops = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = "Log dropped outbound packets (rate-limited) with prefix `osiris-egress-drop`.";
      };
    };

    immutableEtc = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = ''
        Mount {file}`/etc` as a read-only overlay built from the system closure (users come from
        the configuration, not from writable files). Needs the systemd initrd; the installed
        appliance turns it on, the live ISO does not.
      '';
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        # No remote shell unless the site asks for one explicitly.
        services.openssh.enable = lib.mkDefault false;
        networking.firewall.enable = true;
        networking.firewall.allowPing = false;
        networking.nftables.enable = true;

        users.mutableUsers = false;
        # Nobody logs in: the console owns tty1 and SSH is off. Without this NixOS refuses a
        # system where root has neither a password nor a key.
        users.allowNoPasswordLogin = true;
        security.sudo.enable = false;
        nix.settings.allowed-users = [ "root" ];
        environment.defaultPackages = lib.mkForce [ ];
        documentation.enable = false;
        boot.tmp.useTmpfs = true;
        systemd.coredump.settings.Coredump.Storage = "none";

        boot.kernel.sysctl = {
          "kernel.dmesg_restrict" = 1;
          "kernel.kptr_restrict" = 2;
          "kernel.unprivileged_bpf_disabled" = 1;
          "net.core.bpf_jit_harden" = 2;
          "kernel.yama.ptrace_scope" = 2;
          "net.ipv4.conf.all.accept_redirects" = 0;
          "net.ipv4.conf.default.accept_redirects" = 0;
          "net.ipv6.conf.all.accept_redirects" = 0;
          "net.ipv6.conf.default.accept_redirects" = 0;
          "net.ipv4.conf.all.send_redirects" = 0;
        };
      }

      (lib.mkIf cfg.immutableEtc {
        boot.initrd.systemd.enable = true;
        system.etc.overlay.enable = true;
        system.etc.overlay.mutable = false;
        services.userborn.enable = true;
      })

      (lib.mkIf egress.enable {
        networking.nftables.tables.osiris-egress = {
          family = "inet";
          content = ''
            ${set "lan4" "ipv4_addr" lan4}
            ${set "lan6" "ipv6_addr" lan6}
            ${set "dns4" "ipv4_addr" dns4}
            ${set "dns6" "ipv6_addr" dns6}
            ${set "ntp4" "ipv4_addr" ntp4}
            ${set "ntp6" "ipv6_addr" ntp6}

            chain output {
              type filter hook output priority filter; policy drop;

              oifname "lo" accept
              ct state established,related accept
              ct state invalid drop

              # Neighbour discovery and path-MTU errors keep IPv6 and IPv4 working.
              meta l4proto ipv6-icmp accept
              icmp type { destination-unreachable, time-exceeded, parameter-problem } accept

              # DNS and NTP only to the site LAN or the configured servers; NTP from timesyncd anywhere
              # (pool names resolve to changing addresses). Nothing else may speak DNS or NTP outward.
              ip daddr @lan4 meta l4proto { tcp, udp } th dport 53 accept
              ip6 daddr @lan6 meta l4proto { tcp, udp } th dport 53 accept
              ip daddr @dns4 meta l4proto { tcp, udp } th dport 53 accept
              ip6 daddr @dns6 meta l4proto { tcp, udp } th dport 53 accept
              ip daddr @lan4 udp dport 123 accept
              ip6 daddr @lan6 udp dport 123 accept
              ip daddr @ntp4 udp dport 123 accept
              ip6 daddr @ntp6 udp dport 123 accept
              meta skuid ${toString config.ids.uids.systemd-timesync} udp dport 123 accept

              # DHCP (v4 and v6).
              udp sport 68 udp dport 67 accept
              udp sport 546 udp dport 547 accept

              # Scanning the site LAN.
              ip daddr @lan4 tcp dport ${ports egress.lanPorts} accept
              ip6 daddr @lan6 tcp dport ${ports egress.lanPorts} accept
              ip daddr @lan4 icmp type echo-request accept

              ${lib.concatMapStringsSep "\n  " endpointRule egress.endpoints}

              ${lib.optionalString egress.logDrops ''limit rate 10/minute burst 20 packets log prefix "osiris-egress-drop " level info''}
            }
          '';
        };
      })
    ]
  );

  meta.maintainers = [ ];
}
