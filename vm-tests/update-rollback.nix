# Signed update to a second system whose daemon never comes up: the closure verifies and is
# staged with boot counting, the appliance boots it, the health gate gives up at its deadline,
# marks the entry bad and reboots into the previous system.
#
# The keys below are TEST-ONLY keys, generated for this test and trusted nowhere else.
{
  pkgs,
  applianceModules,
  ...
}:
let
  vendorKeyPem = pkgs.writeText "vendor-test.pem" ''
    -----BEGIN PRIVATE KEY-----
    MC4CAQAwBQYDK2VwBCIEIISHpLwUi2/iLGBK7wG8cjlzhEGwYYp8190N226yZpm0
    -----END PRIVATE KEY-----
  '';
  vendorKey = "osiris-vmtest-vendor-1:6bbpImmQ6qpd4nZiXDALb37sb5rGx6DIUKMj6thr5Ik=";
  cacheSecret = pkgs.writeText "cache-test.sec" "osiris-vmtest-cache-1:tNDqmujVxaAX7Pdlk74J+zp8qp8j5/1HNpBBYXFt7OZdqIQGbEuoCUjkKx/LvaW4BpULaOmGZsyvHWwQjmPt2Q==";
  cacheKey = "osiris-vmtest-cache-1:XaiEBmxLqAlI5Csfy72luAaVC2jphmbMrx1sEI5j7dk=";
  testDir = "/var/lib/osiris-update-test";
in
pkgs.testers.runNixOSTest {
  name = "osiris-update-rollback";
  # The appliance modules add the osiris overlay (nixpkgs.overlays), so nodes evaluate their
  # own nixpkgs instead of sharing the test's read-only one.
  node.pkgsReadOnly = false;

  nodes.appliance =
    { lib, pkgs, ... }:
    {
      imports = applianceModules;
      # Both the appliance and the test network give a default host name.
      networking.hostName = "appliance";
      virtualisation = {
        useBootLoader = true;
        useEFIBoot = true;
        memorySize = 2048;
      };
      services.osiris.settings.site = "vm-test-clinic";
      services.osiris.hardening.immutableEtc = lib.mkForce false;
      # This VM has no LUKS partitions and no TPM; stolen-box.nix tests the encryption.
      services.osiris.diskEncryption.enable = lib.mkForce false;
      services.osiris.updates = {
        enable = true;
        release = "1.0.0";
        manifestUrl = "file://${testDir}/manifest.json";
        inherit vendorKey;
        cacheKeys = [ cacheKey ];
        healthDeadlineSec = 60;
      };
      environment.systemPackages = [ pkgs.openssl ];

      # The update: release 1.1.0 whose daemon never starts, so its health gate must fail.
      specialisation.broken.configuration = {
        services.osiris.updates.release = lib.mkForce "1.1.0";
        systemd.services.osirisd.serviceConfig.ExecStart = lib.mkForce "${pkgs.coreutils}/bin/false";
      };
    };

  testScript = ''
    import json, base64

    appliance.start()
    appliance.wait_for_unit("multi-user.target")

    with subtest("adopt the installed system as entry osiris-1.0.0, as the installer does"):
        appliance.succeed(
            "sys=$(readlink -f /run/current-system); "
            "rm -f /boot/loader/entries/nixos-generation-*.conf; "
            "mkdir -p /boot/EFI/osiris; "
            "cp $sys/kernel /boot/EFI/osiris/osiris-1.0.0-linux.efi; "
            "cp $sys/initrd /boot/EFI/osiris/osiris-1.0.0-initrd.efi; "
            "printf 'title OsirisCare 1.0.0\\nversion 1.0.0\\nsort-key osiris\\n"
            "linux /EFI/osiris/osiris-1.0.0-linux.efi\\ninitrd /EFI/osiris/osiris-1.0.0-initrd.efi\\n"
            "options init=%s/init %s\\n' $sys \"$(cat $sys/kernel-params)\" "
            "> /boot/loader/entries/osiris-1.0.0.conf; "
            "printf 'timeout 0\\n' > /boot/loader/loader.conf"
        )
        old_system = appliance.succeed("readlink -f /run/current-system").strip()
        appliance.reboot()
        appliance.wait_for_unit("multi-user.target")
        appliance.succeed("bootctl status | grep -q osiris-1.0.0.conf")

    with subtest("publish release 1.1.0: a signed cache and a signed manifest"):
        broken = appliance.succeed("readlink -f /run/current-system/specialisation/broken").strip()
        appliance.succeed(
            "mkdir -p ${testDir} && nix --extra-experimental-features nix-command copy "
            f"--to 'file://${testDir}/cache?secret-key=${cacheSecret}&compression=xz' {broken}"
        )
        manifest = {
            "schema": "osiris.update/v1",
            "version": "1.1.0",
            "min_version": "1.0.0",
            "system": broken,
            "cache_url": "file://${testDir}/cache",
            "cache_keys": ["${cacheKey}"],
            "released": "2026-11-28T00:00:00Z",
            "expires": "2099-01-01T00:00:00Z",
            "counter": 1,
        }
        payload = json.dumps(manifest).encode()
        appliance.succeed(f"echo {base64.b64encode(payload).decode()} | base64 -d > /tmp/payload")
        signature = appliance.succeed(
            "printf 'osiris-update-manifest/v1\\n' | cat - /tmp/payload > /tmp/msg && "
            "openssl pkeyutl -sign -rawin -inkey ${vendorKeyPem} -in /tmp/msg | base64 -w0"
        ).strip()
        signed = {
            "key": "osiris-vmtest-vendor-1",
            "payload": base64.b64encode(payload).decode(),
            "signature": signature,
        }
        appliance.succeed(f"echo '{json.dumps(signed)}' > ${testDir}/manifest.json")

    with subtest("apply: verify, import and stage with three tries"):
        appliance.succeed("osiris update check")
        appliance.succeed("osiris update apply")
        appliance.succeed("test -e /boot/loader/entries/osiris-1.1.0+3.conf")
        appliance.succeed("osiris update status | grep -q staged")

    with subtest("boot the update; the gate gives up at its deadline and rolls back"):
        appliance.reboot()
        appliance.wait_for_unit("multi-user.target")
        appliance.succeed(f"test $(readlink -f /run/current-system) = {broken}")
        # osiris-update-gate reboots the appliance itself after the rollback.
        appliance.wait_for_console_text("rolled back", timeout=300)
        appliance.connected = False
        appliance.wait_for_unit("multi-user.target")
        appliance.succeed(f"test $(readlink -f /run/current-system) = {old_system}")
        appliance.succeed("ls /boot/loader/entries | grep -q '^osiris-1.1.0+0-'")
        status = appliance.succeed("osiris update status")
        assert "rolled_back" in status, status
  '';
}
