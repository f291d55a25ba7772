# vm-tests/lib/test-uki.sh: sourced by the Secure Boot boot tests (secure-boot-uki.sh,
# secure-boot-iso.sh). make_test_uki MARKER OUT builds, in the current directory, an unsigned
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
