//! Kerberos logins for WinRM: this process's own krb5 configuration and ticket cache (in the data
//! directory, never the machine's), and tickets from the domain's KDC by MIT `kinit`.
//!
//! The Kerberos library reads `KRB5_CONFIG` when it starts a context, from the process
//! environment; a multi-threaded program cannot safely change its own environment, so
//! [`prepare_process`] writes the configuration and, when the environment does not point at it
//! yet, re-executes the program with it (the same PID, arguments and standard streams). The
//! osirisd unit sets it beforehand, so the daemon starts once.
//!
//! The password goes to `kinit` on its standard input (never its arguments) and from there only to
//! the KDC; a workstation receives a service ticket it can only use if it holds its own key, and
//! proves that key in its answer (mutual authentication), so a host that merely answers at a
//! workstation's address learns nothing it can crack or relay.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Names the directory [`prepare_process`] set up (the krb5 configuration and ticket caches).
pub const DIR_ENV: &str = "OSIRIS_KERBEROS_DIR";
/// Set in the re-executed process, so a second mismatch is an error instead of a loop.
const REEXEC_ENV: &str = "OSIRIS_KERBEROS_REEXEC";

/// How long a ticket obtained by `kinit` is used before asking again (AD issues 10-hour TGTs by
/// default; asking every half hour keeps well inside any realistic policy).
const TICKET_REUSE: Duration = Duration::from_secs(30 * 60);
/// How long `kinit` may take (it tries each KDC with its own shorter timeouts).
const KINIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The realm the logins belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Realm {
    /// e.g. `CLINIC.LOCAL`.
    pub realm: String,
    /// The KDC (host name or IP address); `None`: DNS SRV records of the realm.
    pub kdc: Option<String>,
}

/// Why a Kerberos login cannot be set up or a ticket obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KerberosError {
    /// The realm is not a DNS-style name.
    #[error("Kerberos realm `{}` is not a domain name in upper case (e.g. CLINIC.LOCAL)", .0.escape_debug())]
    Realm(String),
    /// The KDC is not a host name or IP address.
    #[error("KDC `{}` is not a host name or IP address", .0.escape_debug())]
    Kdc(String),
    /// The directory path cannot be written into a krb5 configuration.
    #[error("the Kerberos directory {} has characters a krb5 configuration cannot hold; choose a data_dir without control characters", .0.display())]
    Path(PathBuf),
    /// Writing the configuration failed.
    #[error("cannot write the Kerberos configuration {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Re-executing with the configuration failed.
    #[error("cannot restart {} with its Kerberos configuration: {source}", .exe.display())]
    Exec {
        exe: PathBuf,
        source: std::io::Error,
    },
    /// The environment still does not point at the configuration after re-executing.
    #[error("KRB5_CONFIG does not point at {} even after restarting with it; unset KRB5_CONFIG and KRB5CCNAME", .0.display())]
    Loop(PathBuf),
    /// A Kerberos login was asked of a process that did not set up its Kerberos configuration.
    #[error(
        "this program did not set up its Kerberos configuration (osirisd and `osiris scan` do); use auth = \"ntlm\" here"
    )]
    NotPrepared,
    /// `kinit` is not installed.
    #[error("cannot run kinit ({0}); install MIT Kerberos (Debian: krb5-user)")]
    KinitMissing(String),
    /// The KDC refused the login, or could not be reached.
    #[error("the KDC refused a ticket for {principal}: {message}")]
    Kinit { principal: String, message: String },
    /// `kinit` did not finish.
    #[error("kinit for {0} did not finish within 30 s (is the KDC reachable on port 88?)")]
    KinitTimeout(String),
}

/// The krb5 configuration file in `dir`.
pub fn config_path(dir: &Path) -> PathBuf {
    dir.join("krb5.conf")
}

/// Writes this program's krb5 configuration for `realm` into `dir`, and makes sure the process
/// runs with it: returns at once when `KRB5_CONFIG` and [`DIR_ENV`] already point there (and
/// `KRB5CCNAME` is unset), otherwise re-executes the program with them set; returns only on
/// failure in that case. Call it before anything depends on the process staying the same
/// (nothing written to standard output yet).
pub fn prepare_process(dir: &Path, realm: &Realm) -> Result<(), KerberosError> {
    let text = config_text(dir, realm)?;
    write_config(dir, &text)?;
    let conf = config_path(dir);
    let ready = std::env::var_os("KRB5_CONFIG").as_deref() == Some(conf.as_os_str())
        && std::env::var_os(DIR_ENV).as_deref() == Some(dir.as_os_str())
        && std::env::var_os("KRB5CCNAME").is_none();
    if ready {
        return Ok(());
    }
    if std::env::var_os(REEXEC_ENV).is_some() {
        return Err(KerberosError::Loop(conf));
    }
    let exe = std::env::current_exe().map_err(|source| KerberosError::Exec {
        exe: PathBuf::from("/proc/self/exe"),
        source,
    })?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    tracing::debug!(config = %conf.display(), "Restarting with the Kerberos configuration.");
    let source = std::os::unix::process::CommandExt::exec(
        Command::new(&exe)
            .args(args)
            .env("KRB5_CONFIG", &conf)
            .env(DIR_ENV, dir)
            .env(REEXEC_ENV, "1")
            .env_remove("KRB5CCNAME"),
    );
    Err(KerberosError::Exec { exe, source })
}

/// The krb5 configuration for `realm` with its ticket caches in `dir`: no DNS guesses about which
/// realm a host is in, no reverse DNS for service names (both would let DNS answers choose the
/// principal a ticket is for), TCP to the KDC.
pub fn config_text(dir: &Path, realm: &Realm) -> Result<String, KerberosError> {
    let realm_ok = !realm.realm.is_empty()
        && realm.realm.len() <= 253
        && realm.realm.contains('.')
        && realm
            .realm
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '.' | '-'));
    if !realm_ok {
        return Err(KerberosError::Realm(realm.realm.clone()));
    }
    if let Some(kdc) = realm
        .kdc
        .as_deref()
        .filter(|kdc| !model::is_valid_host(kdc))
    {
        return Err(KerberosError::Kdc(kdc.to_owned()));
    }
    let dir_text = dir
        .to_str()
        .filter(|text| {
            text.starts_with('/') && !text.chars().any(|c| c.is_control() || "{}#;".contains(c))
        })
        .ok_or_else(|| KerberosError::Path(dir.to_owned()))?;
    let domain = realm.realm.to_ascii_lowercase();
    let name = &realm.realm;
    let (lookup_kdc, realm_block) = match &realm.kdc {
        Some(kdc) => {
            // An IPv6 address needs brackets in a krb5 host specification.
            let host = if kdc.contains(':') {
                format!("[{kdc}]")
            } else {
                kdc.clone()
            };
            (
                "false",
                format!("[realms]\n    {name} = {{\n        kdc = {host}\n    }}\n"),
            )
        }
        None => ("true", String::new()),
    };
    Ok(format!(
        "# Written by osiris for its WinRM logins (scan-winrm); rewritten at every start.\n\
         [libdefaults]\n    default_realm = {name}\n    default_ccache_name = FILE:{dir_text}/ccache-%{{uid}}\n    \
         dns_lookup_realm = false\n    dns_lookup_kdc = {lookup_kdc}\n    rdns = false\n    \
         dns_canonicalize_hostname = false\n    udp_preference_limit = 1\n    forwardable = false\n\
         {realm_block}\
         [domain_realm]\n    .{domain} = {name}\n    {domain} = {name}\n"
    ))
}

fn write_config(dir: &Path, text: &str) -> Result<(), KerberosError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| KerberosError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    {
        use std::os::unix::fs::PermissionsExt;
        // Ticket caches live here: only this account may list or replace them.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err(dir))?;
    }
    let path = config_path(dir);
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    let tmp = dir.join(format!(".krb5.conf.{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(err(&path))
}

/// The principal `kinit` asks for: `user@domain` → `user@DOMAIN`; `DOMAIN\user` and `user` →
/// `user` in the configured default realm.
pub fn principal(user: &str) -> String {
    if let Some((_, name)) = user.split_once('\\') {
        name.to_owned()
    } else if let Some((name, domain)) = user.split_once('@') {
        format!("{name}@{}", domain.to_ascii_uppercase())
    } else {
        user.to_owned()
    }
}

/// When each principal last got a ticket in this process.
static TICKETS: Mutex<Option<HashMap<String, Instant>>> = Mutex::new(None);

/// Makes sure the process's ticket cache holds a ticket for `principal`, asking the KDC (with
/// `password`) when this process has not in the last half hour. Blocks; one `kinit` at a time.
pub fn ensure_ticket(principal: &str, password: &str) -> Result<(), KerberosError> {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return Err(KerberosError::NotPrepared);
    };
    let mut tickets = TICKETS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let tickets = tickets.get_or_insert_with(HashMap::new);
    if tickets
        .get(principal)
        .is_some_and(|at| at.elapsed() < TICKET_REUSE)
    {
        return Ok(());
    }
    kinit(Path::new(&dir), principal, password)?;
    tickets.insert(principal.to_owned(), Instant::now());
    Ok(())
}

/// Forgets that `principal` has a ticket (after the KDC or a host refused it), so the next login
/// asks again.
pub fn forget_ticket(principal: &str) {
    if let Some(tickets) = TICKETS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_mut()
    {
        tickets.remove(principal);
    }
}

fn kinit(dir: &Path, principal: &str, password: &str) -> Result<(), KerberosError> {
    let mut child = Command::new("kinit")
        .arg(principal)
        .env("KRB5_CONFIG", config_path(dir))
        .env_remove("KRB5CCNAME")
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| KerberosError::KinitMissing(err.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        let mut line = zeroize::Zeroizing::new(password.as_bytes().to_vec());
        line.push(b'\n');
        // A kinit that exits before reading (no KDC in its configuration) closes the pipe; its
        // status and message say why.
        let _ = stdin.write_all(&line);
    }
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < KINIT_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(KerberosError::KinitTimeout(principal.to_owned()));
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    // kinit prompts on stderr ("Password for …: "); keep only its verdict.
    let message = stderr
        .lines()
        .map(|line| line.rsplit_once(": kinit: ").map_or(line, |(_, rest)| rest))
        .map(|line| line.strip_prefix("kinit: ").unwrap_or(line).trim())
        .filter(|line| !line.is_empty() && !line.starts_with("Password for "))
        .collect::<Vec<_>>()
        .join("; ");
    Err(KerberosError::Kinit {
        principal: principal.to_owned(),
        message: if message.is_empty() {
            format!("kinit exited with {status}")
        } else {
            message
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn the_configuration_names_the_kdc_and_never_lets_dns_choose_the_principal() {
        let text = config_text(
            Path::new("/var/lib/osiris/kerberos"),
            &Realm {
                realm: "CLINIC.LOCAL".to_owned(),
                kdc: Some("10.0.0.2".to_owned()),
            },
        )
        .unwrap();
        expect![[r#"
            # Written by osiris for its WinRM logins (scan-winrm); rewritten at every start.
            [libdefaults]
                default_realm = CLINIC.LOCAL
                default_ccache_name = FILE:/var/lib/osiris/kerberos/ccache-%{uid}
                dns_lookup_realm = false
                dns_lookup_kdc = false
                rdns = false
                dns_canonicalize_hostname = false
                udp_preference_limit = 1
                forwardable = false
            [realms]
                CLINIC.LOCAL = {
                    kdc = 10.0.0.2
                }
            [domain_realm]
                .clinic.local = CLINIC.LOCAL
                clinic.local = CLINIC.LOCAL
        "#]]
        .assert_eq(&text);
    }

    #[test]
    fn nothing_from_the_configuration_can_add_lines_to_the_krb5_file() {
        let dir = Path::new("/var/lib/osiris/kerberos");
        let bad_realm = Realm {
            realm: "CLINIC.LOCAL\n[realms]".to_owned(),
            kdc: None,
        };
        assert!(matches!(
            config_text(dir, &bad_realm),
            Err(KerberosError::Realm(_))
        ));
        let bad_kdc = Realm {
            realm: "CLINIC.LOCAL".to_owned(),
            kdc: Some("dc1\n    kdc = evil.example".to_owned()),
        };
        assert!(matches!(
            config_text(dir, &bad_kdc),
            Err(KerberosError::Kdc(_))
        ));
        let good = Realm {
            realm: "CLINIC.LOCAL".to_owned(),
            kdc: None,
        };
        assert!(matches!(
            config_text(Path::new("/data/x\n[realms]"), &good),
            Err(KerberosError::Path(_))
        ));
        assert!(matches!(
            config_text(Path::new("relative"), &good),
            Err(KerberosError::Path(_))
        ));
        // Without a named KDC, the realm's SRV records find it.
        let text = config_text(dir, &good).unwrap();
        assert!(text.contains("dns_lookup_kdc = true"), "{text}");
        assert!(!text.contains("[realms]"), "{text}");
    }

    #[test]
    fn principals_follow_the_account_name_forms() {
        assert_eq!(
            principal("osiris-ws@clinic.local"),
            "osiris-ws@CLINIC.LOCAL"
        );
        assert_eq!(principal("CLINIC\\osiris-ws"), "osiris-ws");
        assert_eq!(principal("osiris-ws"), "osiris-ws");
    }
}
