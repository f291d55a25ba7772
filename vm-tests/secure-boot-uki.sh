#!/usr/bin/env bash
# A real Secure Boot boot of a signed unified kernel image under qemu: OVMF with Secure Boot on
# and a throwaway test certificate as PK, KEK and db. The UKI is built from a Debian kernel
# (OSIRIS_TEST_KERNEL, extracted by scripts/setup) and systemd's EFI stub with objcopy, its initrd
# is a static /init that prints a marker on the serial console and powers off, and it is signed
# with sbsign. Four boots: the signed UKI prints the marker; systemd-boot (signed with the same key)
# boots it from EFI/Linux/osiris_1.2.0+3.efi, the type #2 entry crates/update stages, and renames
# it to +2-1; the unsigned UKI and a copy with one kernel byte flipped are refused by the firmware
# ("Access Denied"). Prints the time of each boot. OSIRIS_SB_ACCEL=kvm where KVM offers SMM.
# Needs: qemu-system-x86, ovmf, sbsigntool, systemd-boot-efi, binutils, gcc with static libc,
# cpio, openssl, and virt-fw-vars (PyPI virt-firmware) in OSIRIS_PYTHON's venv.
set -euo pipefail
kernel="${OSIRIS_TEST_KERNEL:?set OSIRIS_TEST_KERNEL to a kernel image (scripts/setup extracts one)}"
venv_bin="$(dirname "${OSIRIS_PYTHON:?set OSIRIS_PYTHON to the venv python (scripts/setup-python)}")"
stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
code=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd
vars=/usr/share/OVMF/OVMF_VARS_4M.fd
timeout_s="${OSIRIS_SB_TIMEOUT:-90}"
marker="OSIRIS-UKI-BOOTED"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
[ -n "${OSIRIS_SB_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
cd "$work"

# The UKI: its initrd is one static program as /init that prints the marker.
# shellcheck source=vm-tests/lib/test-uki.sh
. "$here/lib/test-uki.sh"
make_test_uki "$marker" unsigned.efi

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=osiris test db/" \
    -keyout db.key -out db.crt 2>/dev/null
sbsign --key db.key --cert db.crt --output signed.efi unsigned.efi 2>/dev/null
sbverify --cert db.crt signed.efi >/dev/null 2>&1
# One byte flipped inside the kernel: a valid PE whose signature no longer matches.
python3 - <<'PY'
data = bytearray(open("signed.efi", "rb").read())
kernel = open(__import__("os").environ["OSIRIS_TEST_KERNEL"], "rb").read()
at = data.find(kernel[4096:4160]) + 32
assert at > 32
data[at] ^= 1
open("flipped.efi", "wb").write(data)
PY
if sbverify --cert db.crt flipped.efi >/dev/null 2>&1; then
    echo "secure-boot-uki: sbverify accepted the flipped copy" >&2
    exit 1
fi

guid=a0baa8a3-041d-48a6-9a47-5a7f5a2e5c10
"$venv_bin/virt-fw-vars" --input "$vars" --output vars.fd --secure-boot \
    --set-pk "$guid" db.crt --add-kek "$guid" db.crt --add-db "$guid" db.crt >/dev/null 2>&1

# boot NAME IMAGE [ENTRY]: boots IMAGE as the removable-media loader (with ENTRY, IMAGE is
# systemd-boot and the UKI is placed as EFI/Linux/ENTRY, as crates/update stages it) and prints "NAME: booted (Ns)" when
# the marker appears, "NAME: refused (Ns)" when the firmware says Access Denied for it, or
# "NAME: no verdict (Ns)" at the timeout.
boot() {
    local name="$1" image="$2" entry="${3:-}"
    rm -rf esp && mkdir -p esp/EFI/BOOT && cp "$image" esp/EFI/BOOT/BOOTX64.EFI
    if [ -n "$entry" ]; then
        mkdir -p esp/EFI/Linux esp/loader
        cp signed.efi "esp/EFI/Linux/$entry"
        printf 'timeout 0\nconsole-mode keep\neditor no\n' > esp/loader/loader.conf
    fi
    sb_boot "$name" 'failed to load Boot0001.*Access Denied' -drive file=fat:rw:esp,format=raw,if=virtio
}

result_signed="$(boot signed signed.efi)"
echo "$result_signed"
# systemd-boot, signed with the same key, booting the type #2 entry with a try counter.
sbsign --key db.key --cert db.crt --output systemd-boot.efi /usr/lib/systemd/boot/efi/systemd-bootx64.efi 2>/dev/null
result_loader="$(boot loader systemd-boot.efi 'osiris_1.2.0+3.efi')"
echo "$result_loader"
# systemd-boot counted the attempt on the ESP, as crates/update's boot assessment expects.
counted="$(ls esp/EFI/Linux)"
echo "loader: entry after the boot: $counted"
result_unsigned="$(boot unsigned unsigned.efi)"
echo "$result_unsigned"
result_flipped="$(boot flipped flipped.efi)"
echo "$result_flipped"
case "$result_signed $result_unsigned $result_flipped" in
    "signed: booted"*"unsigned: refused"*"flipped: refused"*)
        if [ "$result_loader" != "${result_loader#loader: booted}" ] && [ "$counted" = "osiris_1.2.0+2-1.efi" ]; then
            echo "secure-boot-uki: ok"
        else
            echo "secure-boot-uki: FAILED: systemd-boot did not boot and count the type #2 entry ($result_loader, $counted)" >&2
            exit 1
        fi
        ;;
    *)
        echo "secure-boot-uki: FAILED; serial log of the signed boot:" >&2
        tail -n 30 serial-signed.log >&2
        exit 1
        ;;
esac
