#!/usr/bin/env bash
# A real Secure Boot boot of a signed installer ISO under qemu: the ISO's El Torito UEFI boot
# image is a FAT image whose EFI/BOOT/BOOTX64.EFI is a unified kernel image, built as
# vm-tests/secure-boot-uki.sh builds it (the Debian kernel from OSIRIS_TEST_KERNEL, systemd's
# EFI stub, a static /init that prints a marker on the serial console and powers off). The ISO
# is made with xorriso, signed with `osiris-release sign-iso` (OSIRIS_RELEASE, the built binary)
# and booted as a CD-ROM by OVMF with Secure Boot on and the test certificate enrolled as PK,
# KEK and db. Three boots: the signed ISO prints the marker; the unsigned ISO and one signed by
# another key are refused by the firmware ("Access Denied"). Prints the time of each boot.
# Needs: qemu-system-x86, ovmf, sbsigntool, systemd-boot-efi, binutils, gcc with static libc,
# cpio, openssl, xorriso, mtools, and virt-fw-vars (PyPI virt-firmware) in OSIRIS_PYTHON's venv.
set -euo pipefail
kernel="${OSIRIS_TEST_KERNEL:?set OSIRIS_TEST_KERNEL to a kernel image (scripts/setup extracts one)}"
venv_bin="$(dirname "${OSIRIS_PYTHON:?set OSIRIS_PYTHON to the venv python (scripts/setup-python)}")"
release="${OSIRIS_RELEASE:?set OSIRIS_RELEASE to the osiris-release binary}"
stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
code=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd
vars=/usr/share/OVMF/OVMF_VARS_4M.fd
timeout_s="${OSIRIS_SB_TIMEOUT:-90}"
marker="OSIRIS-ISO-BOOTED"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
[ -n "${OSIRIS_SB_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
cd "$work"

# The UKI: its initrd is one static program as /init that prints the marker.
# shellcheck source=vm-tests/lib/test-uki.sh
. "$here/lib/test-uki.sh"
make_test_uki "$marker" uki.efi

# The EFI system partition image: the UKI as the removable-media loader, with room to spare.
size_kib=$(( ($(stat -c %s uki.efi) / 1024) + 2048 ))
truncate -s "${size_kib}K" efi.img
mformat -i efi.img -v EFIBOOT ::
mmd -i efi.img ::/EFI ::/EFI/BOOT
mcopy -i efi.img uki.efi ::/EFI/BOOT/BOOTX64.EFI
mkdir -p iso/boot && cp efi.img iso/boot/efi.img && echo "OsirisCare installer (test)" > iso/README.TXT
xorriso -as mkisofs -quiet -o installer.iso -V OSIRIS_TEST -J -R \
    -e boot/efi.img -no-emul-boot -isohybrid-gpt-basdat iso

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=osiris test db/" \
    -keyout db.key -out db.crt 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=another vendor/" \
    -keyout other.key -out other.crt 2>/dev/null
chmod 600 db.key other.key
start="$(date +%s%N)"
"$release" sign-iso --key db.key --cert db.crt --out signed.iso installer.iso
end="$(date +%s%N)"
echo "sign-iso: $(((end - start) / 1000000)) ms for $(stat -c %s installer.iso) bytes"
"$release" sign-iso --key other.key --cert other.crt --out other.iso installer.iso

guid=a0baa8a3-041d-48a6-9a47-5a7f5a2e5c10
"$venv_bin/virt-fw-vars" --input "$vars" --output vars.fd --secure-boot \
    --set-pk "$guid" db.crt --add-kek "$guid" db.crt --add-db "$guid" db.crt >/dev/null 2>&1

# boot NAME ISO: boots ISO as a CD-ROM (sb_boot: booted, refused or no verdict).
boot() {
    sb_boot "$1" 'failed to load Boot.*Access Denied' \
        -drive file="$2",format=raw,media=cdrom,readonly=on,if=none,id=cd -device ide-cd,drive=cd,bus=ide.0
}

result_signed="$(boot signed signed.iso)"
echo "$result_signed"
result_unsigned="$(boot unsigned installer.iso)"
echo "$result_unsigned"
result_other="$(boot other other.iso)"
echo "$result_other"
case "$result_signed $result_unsigned $result_other" in
    "signed: booted"*"unsigned: refused"*"other: refused"*)
        echo "secure-boot-iso: ok"
        ;;
    *)
        echo "secure-boot-iso: FAILED; serial logs:" >&2
        for log in serial-*.log; do echo "== $log" >&2; tail -n 20 "$log" >&2; done
        exit 1
        ;;
esac
