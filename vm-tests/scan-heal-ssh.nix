# Appliance + a Linux target running sshd: osirisd comes up hardened, the CLI scans the target
# over SSH through the egress firewall, heals it, and the evidence kit verifies.
{ pkgs, self, ... }:
pkgs.testers.runNixOSTest {
  name = "osiris-scan-heal-ssh";
  # The appliance modules add the osiris overlay (nixpkgs.overlays), so nodes evaluate their
  # own nixpkgs instead of sharing the test's read-only one.
  node.pkgsReadOnly = false;

  nodes.target = {
    networking.firewall.allowedTCPPorts = [ 8080 ];
    environment.systemPackages = [ pkgs.netcat ];
    services.openssh = {
      enable = true;
      settings.PermitRootLogin = "prohibit-password";
    };
  };

  nodes.appliance = {
    imports = [ self.nixosModules.default ];
    services.osiris = {
      enable = true;
      settings = {
        site = "vm-test-clinic";
        target = [
          {
            name = "target";
            platform = "linux";
            transport = "ssh";
            address = "target";
            user = "root";
            key_file = "/var/lib/osiris/secrets/target.key";
          }
        ];
      };
    };
    services.osiris.hardening = {
      enable = true;
      egress.lan = [ "192.168.1.0/24" ];
    };
    environment.systemPackages = [ pkgs.openssh ];
  };

  testScript = ''
    start_all()
    target.wait_for_unit("sshd.service")
    appliance.wait_for_unit("osirisd.service")

    with subtest("the daemon runs hardened and opens no inbound port"):
        appliance.succeed("systemctl show osirisd -p User | grep -q User=osiris")
        appliance.succeed("test -S /run/osiris/api.sock")
        appliance.succeed("stat -c %a /run/osiris/api.sock | grep -qx 660")
        appliance.fail("ss -Htln | grep -v '127.0.0.1\\|\\[::1\\]' | grep -q LISTEN")

    with subtest("egress allows the scanning ports to the LAN and drops the rest"):
        target.succeed("systemd-run --unit=listener nc -lk 8080")
        target.wait_for_open_port(8080)
        appliance.succeed("timeout 5 bash -c 'echo > /dev/tcp/target/22'")
        appliance.fail("timeout 5 bash -c 'echo > /dev/tcp/target/8080'")
        appliance.succeed("journalctl -k | grep -q osiris-egress-drop")

    with subtest("scan and heal the target over SSH"):
        appliance.succeed("install -d -m 0700 -o osiris -g osiris /var/lib/osiris/secrets")
        appliance.succeed("ssh-keygen -q -t ed25519 -N ''' -f /var/lib/osiris/secrets/target.key")
        appliance.succeed("chown osiris:osiris /var/lib/osiris/secrets/target.key")
        pub = appliance.succeed("cat /var/lib/osiris/secrets/target.key.pub").strip()
        target.succeed(f"install -d -m 0700 /root/.ssh && echo '{pub}' >> /root/.ssh/authorized_keys")
        report = appliance.succeed(
            "osiris scan --config /etc/osiris/appliance.toml --data-dir /root/cli-data --json"
        )
        assert '"target"' in report, report
        appliance.succeed("osiris heal --config /etc/osiris/appliance.toml --data-dir /root/cli-data")
        appliance.succeed("osiris evidence export --data-dir /root/cli-data --out /root/kit")
        key = appliance.succeed(
            "osiris evidence show --data-dir /root/cli-data | sed -n 's/^key *//p'"
        ).strip()
        appliance.succeed(f"osiris evidence verify /root/kit --key '{key}'")

    with subtest("the drop above was the egress firewall's doing"):
        appliance.succeed("nft delete table inet osiris-egress")
        appliance.succeed("timeout 5 bash -c 'echo > /dev/tcp/target/8080'")
  '';
}
