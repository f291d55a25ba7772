# osiris-encrypt-volume DEVICE NAME KEY_FILE PCRS
#
# Formats DEVICE as LUKS2 whose first key slot is the recovery key in KEY_FILE (no newline),
# enrolls the TPM2 bound to PCRS (e.g. "7"; "none" enrolls no TPM), and opens it as
# /dev/mapper/NAME. Used by the installer (iso/iso.nix) and the stolen-box VM test, so the test
# exercises exactly what an installed appliance gets. Everything it is given is erased: run it
# only on a device meant to be wiped.
set -euo pipefail

if [ "$#" -ne 4 ]; then
    echo "usage: osiris-encrypt-volume DEVICE NAME KEY_FILE PCRS|none" >&2
    exit 2
fi
device=$1
name=$2
key_file=$3
pcrs=$4

[ -b "$device" ] || { echo "osiris-encrypt-volume: $device is not a block device" >&2; exit 1; }
[ -s "$key_file" ] || { echo "osiris-encrypt-volume: recovery key file $key_file is empty" >&2; exit 1; }
case "$name" in *[!A-Za-z0-9_-]*|"") echo "osiris-encrypt-volume: bad volume name $name" >&2; exit 1 ;; esac
case "$pcrs" in none|[0-9]*) ;; *) echo "osiris-encrypt-volume: bad PCR list $pcrs" >&2; exit 1 ;; esac

# LUKS2, argon2id, AES-XTS with a 512-bit key (cryptsetup's defaults, spelled out so a changed
# default cannot weaken a new appliance). The recovery key is a long random string, so the KDF
# cost only needs to be the default.
cryptsetup luksFormat --batch-mode --type luks2 --cipher aes-xts-plain64 --key-size 512 \
    --hash sha256 --pbkdf argon2id --key-file "$key_file" "$device"

if [ "$pcrs" != none ]; then
    # The TPM releases the volume key only when the PCRs match the state at enrollment.
    systemd-cryptenroll --unlock-key-file="$key_file" --tpm2-device=auto --tpm2-pcrs="$pcrs" "$device"
fi

cryptsetup open --key-file "$key_file" "$device" "$name"
