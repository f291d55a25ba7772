# The console owns tty1: no login prompt there, osiris-console runs as its own user and reaches
# osirisd only through the local API socket.
{ pkgs, self, ... }:
pkgs.testers.runNixOSTest {
  name = "osiris-console-tty1";
  # The appliance modules add the osiris overlay (nixpkgs.overlays), so nodes evaluate their
  # own nixpkgs instead of sharing the test's read-only one.
  node.pkgsReadOnly = false;

  nodes.appliance = {
    imports = [ self.nixosModules.default ];
    services.osiris = {
      enable = true;
      settings.site = "vm-test-clinic";
    };
    services.osiris.console.enable = true;
    services.osiris.hardening.enable = true;
  };

  testScript = ''
    appliance.start()
    appliance.wait_for_unit("osirisd.service")
    appliance.wait_for_unit("osiris-console.service")

    with subtest("tty1 runs the console, not a login prompt"):
        appliance.fail("systemctl is-active getty@tty1.service")
        appliance.succeed("systemctl show osiris-console -p TTYPath | grep -qx TTYPath=/dev/tty1")
        appliance.succeed("ps -o user= -C osiris-console | grep -qx osiris-console")

    with subtest("the console user can use the API socket and nothing else"):
        appliance.succeed("id -nG osiris-console | grep -qw osiris")
        appliance.succeed("getent passwd osiris-console | grep -q nologin")
        appliance.succeed("systemctl show osiris-console -p PrivateNetwork | grep -qx PrivateNetwork=yes")
  '';
}
