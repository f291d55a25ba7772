# A USB export under the real unit (issue 14, finding 7): an auditor's FAT stick plugged into the
# running appliance is mounted at /media/usb-<kernel name> for the daemon's user only, without
# set-uid, devices or executables; osirisd, sandboxed as shipped, writes a kit onto it through its
# local API, the kit verifies against the appliance's key, and the same request aimed at the data
# directory or /etc is refused with nothing written. Pulling the stick unmounts it.
{ pkgs, self, ... }:
pkgs.testers.runNixOSTest {
  name = "osiris-usb-export";
  # The appliance modules add the osiris overlay (nixpkgs.overlays), so nodes evaluate their
  # own nixpkgs instead of sharing the test's read-only one.
  node.pkgsReadOnly = false;

  nodes.appliance = {
    imports = [ self.nixosModules.default ];
    services.osiris = {
      enable = true;
      settings.site = "vm-test-usb-export";
    };
    services.osiris.hardening.enable = true;
    # A USB controller to plug the stick into while the appliance runs.
    virtualisation.qemu.options = [ "-device qemu-xhci,id=xhci" ];
    environment.systemPackages = [ pkgs.curl ];
  };

  testScript = ''
    import json
    import subprocess

    # The auditor's stick: a FAT image made here, plugged in once the appliance runs.
    stick = "/tmp/auditor-stick.img"
    subprocess.run(["${pkgs.coreutils}/bin/truncate", "-s", "256M", stick], check=True)
    subprocess.run(["${pkgs.dosfstools}/bin/mkfs.vfat", "-n", "AUDITOR", stick], check=True)

    def export(dest):
        body = json.dumps({"dest_dir": dest})
        return appliance.execute(
            "curl -sS --unix-socket /run/osiris/api.sock -H 'content-type: application/json' "
            f"-X POST -d '{body}' -w '\\n%{{http_code}}' http://localhost/v1/evidence/export"
        )[1]

    appliance.start()
    appliance.wait_for_unit("osirisd.service")
    # Evidence to export: the first scan of this machine seals a bundle and a checkpoint.
    appliance.wait_until_succeeds("osiris status | grep -Eq 'server_scan .* runs [1-9]'", timeout=300)

    with subtest("a plugged-in stick is mounted for the daemon only, without suid, devices or executables"):
        appliance.send_monitor_command(f"drive_add 0 if=none,id=stick,format=raw,file={stick}")
        appliance.send_monitor_command("device_add usb-storage,bus=xhci.0,drive=stick,id=stickdev")
        mount = appliance.wait_until_succeeds("findmnt -rno TARGET,OPTIONS -S LABEL=AUDITOR", timeout=60)
        target, options = mount.split()
        assert target.startswith("/media/usb-"), target
        for option in ["nosuid", "nodev", "noexec", "umask=0077"]:
            assert option in options, options
        appliance.succeed(f"test \"$(stat -c %U {target})\" = osiris")

    with subtest("osirisd, sandboxed as shipped, writes a kit onto the stick and it verifies"):
        answer = export(target)
        assert answer.endswith("\n200"), answer
        kit = json.loads(answer.rsplit("\n", 1)[0])["path"]
        assert kit.startswith(target + "/"), kit
        key = appliance.succeed(
            "osiris evidence show --data-dir /var/lib/osiris | awk '$1 == \"key\" {print $2}'"
        ).strip()
        appliance.succeed(f"osiris evidence verify {kit} --key '{key}'")

    with subtest("the data directory and /etc are refused, nothing written"):
        for dest in ["/var/lib/osiris", "/etc"]:
            answer = export(dest)
            assert not answer.endswith("\n200"), answer
        appliance.fail("ls -d /var/lib/osiris/osiris-evidence-* /etc/osiris-evidence-*")

    with subtest("pulling the stick unmounts it"):
        appliance.send_monitor_command("device_del stickdev")
        appliance.wait_until_fails(f"mountpoint -q {target}", timeout=60)
  '';
}
