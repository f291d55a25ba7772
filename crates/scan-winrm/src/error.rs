//! Why a WinRM target's settings cannot be used (found before anything connects).

use std::path::PathBuf;

/// A WinRM target that is refused before connecting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WinRmConfigError {
    /// The address is not a host name or IP address.
    #[error("address `{}` is not an IP address or host name", .0.escape_debug())]
    Address(String),
    /// The account name has characters Windows account names cannot have.
    #[error(
        "user `{}` is not a valid Windows account name (use `user`, `DOMAIN\\user` or `user@domain`)",
        .0.escape_debug()
    )]
    User(String),
    /// Basic authentication over HTTP would send the password readably.
    #[error(
        "Basic authentication over HTTP sends the password readably; use HTTPS, or NTLM (encrypted messages)"
    )]
    BasicOverHttp,
    /// Kerberos is offered over HTTPS only (the service ticket would otherwise protect nothing
    /// of the messages).
    #[error("Kerberos logins go over HTTPS only; set https = true")]
    KerberosOverHttp,
    /// The program did not set up its Kerberos configuration ([`crate::kerberos::prepare_process`]).
    #[error(
        "this program did not set up its Kerberos configuration (osirisd and `osiris scan` do); use auth = \"ntlm\" here"
    )]
    KerberosNotPrepared,
    /// A CA file or certificate pin was given for plain HTTP.
    #[error("a CA file or certificate pin needs HTTPS")]
    TlsWithoutHttps,
    /// A host verified by its DNS name is only ever reached over HTTPS.
    #[error(
        "a host found in the directory is reached only over HTTPS, its certificate verified for its DNS name; never over HTTP"
    )]
    ServerNameWithoutHttps,
    /// The name the certificate must carry is not a DNS name.
    #[error("server name `{}` is not a DNS name the certificate could carry", .0.escape_debug())]
    ServerName(String),
    /// The CA file does not exist.
    #[error("CA file {} does not exist or is not a file", .0.display())]
    CaFile(PathBuf),
    /// The client could not be built from these settings (bad CA file, bad pin).
    #[error("cannot set up the WinRM client: {0}")]
    Client(String),
}
