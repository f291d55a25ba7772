#!/usr/bin/env bash
# Applies what the console's wizard chose (network file, time zone) as root, trusting nothing the daemon wrote.
#
#   console-settings.sh network SRC DEST OWNER   validate SRC and install it as DEST (0644)
#   console-settings.sh timezone SRC OWNER       validate SRC's time zone and print it
#
# SRC lives in the daemon's data directory, which a compromised daemon controls. So SRC is read with OWNER's
# privileges only (a link to a root-only file fails as it would for the daemon), must be a regular file owned by
# OWNER (never a symlink), is at most 4 KiB, and must match the grammar osirisd writes line by line; anything
# else is refused with a reason and nothing is installed.
set -euo pipefail
export LC_ALL=C

die() {
    echo "console-settings: $*" >&2
    exit 1
}

# Runs as OWNER (through setpriv): prints SRC if it is a regular file that OWNER owns, else fails.
read_as_owner() {
    local src=$1
    [ -L "$src" ] && die "refusing $src: it is a symbolic link"
    [ -f "$src" ] || die "refusing $src: not a regular file"
    [ -O "$src" ] || die "refusing $src: not owned by the daemon's user"
    local size
    size=$(stat -c %s -- "$src")
    [ "$size" -le 4096 ] || die "refusing $src: $size bytes (at most 4096)"
    cat -- "$src"
}

# Reads SRC with OWNER's privileges; prints nothing and returns 3 when SRC does not exist.
read_src() {
    local src=$1 owner=$2 uid gid
    uid=$(id -u -- "$owner") || die "no such user: $owner"
    gid=$(id -g -- "$owner") || die "no such user: $owner"
    setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all -- \
        bash -c "$(declare -f die read_as_owner); [ -e \"\$1\" ] || [ -L \"\$1\" ] || exit 3; read_as_owner \"\$1\"" \
        console-settings "$src"
}

ipv4='((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
ipv6='[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*'
ip="($ipv4|$ipv6)"

# Checks the networkd file osirisd writes: a comment, [Match] Name=, [Network] DHCP= | Address= | Gateway= | DNS=.
check_network() {
    local section="" n=0 line
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        case "$section:$line" in
        *:"" | *:"# "*)
            [[ $line =~ ^(#\ [[:print:]]*)?$ ]] || die "line $n: a comment must be printable text"
            ;;
        *:"[Match]") section=match ;;
        *:"[Network]") section=network ;;
        match:Name=*)
            [[ $line =~ ^Name=[A-Za-z0-9_.:-]{1,15}$ ]] || die "line $n: not an interface name: ${line@Q}"
            ;;
        network:DHCP=*)
            [[ $line =~ ^DHCP=(yes|no|ipv4|ipv6)$ ]] || die "line $n: DHCP must be yes, no, ipv4 or ipv6"
            ;;
        network:Address=*)
            [[ $line =~ ^Address=$ip/[0-9]{1,3}$ ]] || die "line $n: not an address with prefix: ${line@Q}"
            ;;
        network:Gateway=* | network:DNS=*)
            [[ $line =~ ^(Gateway|DNS)=$ip$ ]] || die "line $n: not an IP address: ${line@Q}"
            ;;
        *) die "line $n: not allowed in the console's network file: ${line@Q}" ;;
        esac
    done
}

cmd=${1:-}
case "$cmd" in
network)
    [ $# -eq 4 ] || die "usage: console-settings.sh network SRC DEST OWNER"
    src=$2 dest=$3 owner=$4
    rc=0
    content=$(read_src "$src" "$owner") || rc=$?
    [ "$rc" -eq 3 ] && exit 0
    [ "$rc" -eq 0 ] || exit "$rc"
    check_network <<<"$content"
    tmp=$(mktemp "$(dirname "$dest")/.osiris-network.XXXXXX")
    printf '%s\n' "$content" >"$tmp"
    chmod 0644 "$tmp"
    mv -f -- "$tmp" "$dest"
    ;;
timezone)
    [ $# -eq 3 ] || die "usage: console-settings.sh timezone SRC OWNER"
    src=$2 owner=$3
    rc=0
    content=$(read_src "$src" "$owner") || rc=$?
    [ "$rc" -eq 3 ] && exit 0
    [ "$rc" -eq 0 ] || exit "$rc"
    tz=${content%%$'\n'*}
    [[ $tz =~ ^[A-Za-z0-9/_+-]{1,64}$ && $tz != *..* ]] || die "refusing time zone ${tz@Q} from $src"
    printf '%s\n' "$tz"
    ;;
*) die "usage: console-settings.sh network SRC DEST OWNER | timezone SRC OWNER" ;;
esac
