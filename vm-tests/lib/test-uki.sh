# vm-tests/lib/test-uki.sh: what the Secure Boot boot tests (secure-boot-uki.sh, secure-boot-iso.sh)
# share: the marker UKI and one boot under OVMF. make_test_uki MARKER OUT builds, in the current directory, an unsigned
# unified kernel image OUT from the kernel $kernel and systemd's EFI stub $stub: its initrd is one
# static /init that prints MARKER on the serial console and powers off.
make_test_uki() {
    local marker=$1 out=$2
    case "$marker" in *[!A-Z0-9-]*) echo "make_test_uki: the marker may hold only A-Z, 0-9 and -" >&2; return 1 ;; esac
    cat > init.c <<C
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <unistd.h>
int main(void) {
    mount("devtmpfs", "/dev", "devtmpfs", 0, 0);
    int fd = open("/dev/console", O_WRONLY);
    static const char msg[] = "\\n${marker}\\n";
    if (fd >= 0) write(fd, msg, sizeof msg - 1);
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
C
    gcc -static -Os -o init init.c
    mkdir -p root/dev && cp init root/init
    (cd root && find . | cpio -o -H newc --quiet) | gzip -9 > initrd.gz
    printf 'ID=osiris\nVERSION_ID=1.2.0\n' > os-release
    printf 'console=ttyS0 panic=-1 quiet\0' > cmdline
    objcopy \
        --add-section .osrel=os-release --change-section-vma .osrel=0x20000 \
        --add-section .cmdline=cmdline --change-section-vma .cmdline=0x30000 \
        --add-section .linux="$kernel" --change-section-vma .linux=0x2000000 \
        --add-section .initrd=initrd.gz --change-section-vma .initrd=0x3000000 \
        "$stub" "$out"
}

# sb_boot NAME DENIED DRIVE_ARG...: boots qemu (q35 with SMM, OVMF $code with Secure Boot on and
# the enrolled variables vars.fd, copied per boot) with the given drive arguments, and prints
# "NAME: booted (Ns)" when $marker appears on the serial console, "NAME: refused (Ns)" when the
# firmware's log matches the grep pattern DENIED, or "NAME: no verdict (Ns)" after $timeout_s.
# Uses the caller's $code, $marker, $timeout_s and OSIRIS_SB_ACCEL (default tcg: OVMF's Secure
# Boot build needs SMM, which KVM inside a VM often lacks).
sb_boot() {
    local name=$1 denied=$2
    shift 2
    cp vars.fd "vars-$name.fd"
    : > "serial-$name.log"
    local start verdict="no verdict"
    start="$(date +%s%N)"
    qemu-system-x86_64 -machine q35,smm=on -accel "${OSIRIS_SB_ACCEL:-tcg}" -m 512 -nodefaults \
        -global driver=cfi.pflash01,property=secure,value=on \
        -drive if=pflash,format=raw,unit=0,readonly=on,file="$code" \
        -drive if=pflash,format=raw,unit=1,file="vars-$name.fd" \
        "$@" \
        -display none -serial file:"serial-$name.log" -no-reboot >"qemu-$name.log" 2>&1 &
    local qemu=$!
    while [ $(($(date +%s%N) - start)) -lt $((timeout_s * 1000000000)) ]; do
        if grep -q "$marker" "serial-$name.log"; then
            verdict=booted
            break
        fi
        if grep -q "$denied" "serial-$name.log"; then
            verdict=refused
            break
        fi
        kill -0 "$qemu" 2>/dev/null || break
        sleep 0.2
    done
    local end
    end="$(date +%s%N)"
    kill "$qemu" 2>/dev/null || true
    wait "$qemu" 2>/dev/null || true
    # The marker may have been written just before qemu powered off.
    [ "$verdict" = "no verdict" ] && grep -q "$marker" "serial-$name.log" && verdict=booted
    echo "$name: $verdict ($(((end - start) / 1000000000)).$(((end - start) / 100000000 % 10))s)"
}
