# osiris-encrypt-volume (encrypt-volume.sh): LUKS2 with a recovery key and a TPM2 enrollment.
# Shared by the installer and the stolen-box VM test.
{
  writeShellApplication,
  coreutils,
  cryptsetup,
  systemd,
}:
writeShellApplication {
  name = "osiris-encrypt-volume";
  runtimeInputs = [
    coreutils
    cryptsetup
    systemd
  ];
  text = builtins.readFile ./encrypt-volume.sh;
}
