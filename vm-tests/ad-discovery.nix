# Appliance + a Samba AD domain controller: `osiris discover` reads the computer inventory over
# LDAPS and records it as evidence.
{ pkgs, self, ... }:
let
  domain = "clinic.test";
  adminPassword = "Osiris-Test-Passw0rd";
in
pkgs.testers.runNixOSTest {
  name = "osiris-ad-discovery";
  # The appliance modules add the osiris overlay (nixpkgs.overlays), so nodes evaluate their
  # own nixpkgs instead of sharing the test's read-only one.
  node.pkgsReadOnly = false;

  nodes.dc = {
    networking.firewall.enable = false;
    environment.systemPackages = [ pkgs.samba ];
    # The DC is provisioned by the test script (samba-tool), then started by hand.
  };

  nodes.appliance = {
    imports = [ self.nixosModules.default ];
    services.osiris = {
      enable = true;
      settings = {
        site = "vm-test-clinic";
        directory = {
          inherit domain;
          dc = "dc";
          bind_user = "Administrator@${domain}";
          password_file = "/var/lib/osiris/secrets/ad.password";
          tls = "ldaps";
          ca_file = "/var/lib/osiris/secrets/dc-ca.pem";
        };
      };
    };
    services.osiris.hardening = {
      enable = true;
      egress.lan = [ "192.168.1.0/24" ];
    };
  };

  testScript = ''
    start_all()
    dc.wait_for_unit("multi-user.target")
    dc.succeed(
        "samba-tool domain provision --realm=${pkgs.lib.toUpper domain} --domain=CLINIC "
        "--server-role=dc --dns-backend=SAMBA_INTERNAL --adminpass='${adminPassword}' "
        "--use-rfc2307 --option='tls enabled = yes'"
    )
    dc.succeed("samba -D")
    dc.wait_for_open_port(636)
    dc.succeed("samba-tool computer add WS01")
    dc.succeed("samba-tool computer add WS02")

    appliance.wait_for_unit("osirisd.service")
    appliance.succeed("install -d -m 0700 -o osiris -g osiris /var/lib/osiris/secrets")
    ca = dc.succeed("cat /var/lib/samba/private/tls/ca.pem")
    appliance.succeed(f"echo '{ca}' > /var/lib/osiris/secrets/dc-ca.pem")
    appliance.succeed("printf %s '${adminPassword}' > /var/lib/osiris/secrets/ad.password")
    appliance.succeed("chmod 0600 /var/lib/osiris/secrets/*")

    inventory = appliance.succeed(
        "osiris discover --config /etc/osiris/appliance.toml --data-dir /root/cli-data --json"
    )
    assert "WS01" in inventory and "WS02" in inventory, inventory
  '';
}
