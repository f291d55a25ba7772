# Appliance + a Windows target over WinRM. Runs only when a Windows disk image is supplied:
# `OSIRIS_WINDOWS_IMAGE=/path/win.qcow2 OSIRIS_WINDOWS_SECRETS=/path/dir \
#   nix build --impure .#checks.x86_64-linux.vm-windows`, where the secrets directory holds
# `win1.password` and `win1-ca.pem` (test credentials only: they end up in the Nix store).
# The image must have WinRM over HTTPS enabled for `osiris-scan`, the static address
# 192.168.1.50/24; without an image this file evaluates
# to null and the flake has no such check. The Windows guest is not a NixOS node: the test
# script starts it with QEMU on the test's first VLAN (the driver's `QEMU_VDE_SOCKET_1`).
{ pkgs, self, ... }:
let
  image = builtins.getEnv "OSIRIS_WINDOWS_IMAGE";
  secrets = builtins.getEnv "OSIRIS_WINDOWS_SECRETS";
in
if image == "" || secrets == "" then
  null
else
  pkgs.testers.runNixOSTest {
    name = "osiris-windows";
    # The appliance modules add the osiris overlay (nixpkgs.overlays), so nodes evaluate their
    # own nixpkgs instead of sharing the test's read-only one.
    node.pkgsReadOnly = false;

    nodes.appliance = {
      imports = [ self.nixosModules.default ];
      services.osiris = {
        enable = true;
        settings = {
          site = "vm-test-clinic";
          target = [
            {
              name = "win1";
              platform = "windows-server";
              transport = "winrm";
              address = "192.168.1.50";
              user = "osiris-scan";
              password_file = "/var/lib/osiris/secrets/win1.password";
              https = true;
              ca_file = "/var/lib/osiris/secrets/win1-ca.pem";
            }
          ];
        };
      };
      services.osiris.hardening = {
        enable = true;
        egress.lan = [ "192.168.1.0/24" ];
      };
    };

    testScript = ''
      win1 = create_machine(
          "${pkgs.qemu}/bin/qemu-system-x86_64 -enable-kvm -cpu host -m 4096 -smp 2 "
          "-drive file=${image},snapshot=on "
          "-netdev vde,id=n1,sock=$QEMU_VDE_SOCKET_1 "
          "-device virtio-net-pci,netdev=n1,mac=52:54:00:12:01:50 -display none",
          name="win1",
      )
      win1.start()
      appliance.start()
      appliance.wait_for_unit("osirisd.service")
      appliance.succeed(
          "install -d -m 0700 -o osiris -g osiris /var/lib/osiris/secrets && "
          "install -m 0600 -o osiris -g osiris ${
            builtins.path {
              path = secrets;
              name = "win1-secrets";
            }
          }/* "
          "/var/lib/osiris/secrets/"
      )
      appliance.wait_until_succeeds("timeout 2 bash -c 'echo > /dev/tcp/192.168.1.50/5986'", timeout=900)
      report = appliance.succeed(
          "osiris scan --config /etc/osiris/appliance.toml --data-dir /root/cli-data --json"
      )
      assert '"win1"' in report, report
    '';
  }
