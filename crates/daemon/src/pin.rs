//! The console PIN: set at setup (`POST /v1/setup/pin`), kept as a salted argon2id hash in a
//! 0600 file (`<data_dir>/console-pin`, replaced through `durable`), checked one attempt at a
//! time with a growing wait after wrong PINs, and exchanged (`POST /v1/console/unlock`) for an
//! unlock token bound to the caller's uid. Operator actions take [`ConsoleUnlocked`], which
//! asks for that token whenever a PIN is set.
//!
//! Root is never asked: root can read and replace the PIN file anyway, and the `osiris`
//! command runs as root on the appliance. A token expires `daemon.console_lock_secs` after the
//! last request that carried it, so it dies with the console that stopped using it (locked,
//! closed or crashed). Tokens and the wait live in memory only; a restart drops every token.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use crate::Shared;
use crate::api::{Answer, Fail, blocking, current_peer, internal};

/// The file that holds the PIN's hash.
pub(crate) const FILE: &str = "console-pin";

/// Fewest digits of a PIN.
pub(crate) const MIN_DIGITS: usize = 4;
/// Most digits of a PIN.
pub(crate) const MAX_DIGITS: usize = 12;

/// Wrong PINs answered without a wait; each one after waits twice as long as the one before.
const FREE_TRIES: u32 = 3;
/// The longest wait between attempts.
const MAX_WAIT: Duration = Duration::from_secs(300);
/// Unlock tokens kept at once (the oldest goes first).
const MAX_SESSIONS: usize = 8;

/// The PIN, the wait after wrong ones, and the unlock tokens handed out.
pub(crate) struct ConsolePin {
    file: PathBuf,
    lock_after: Duration,
    /// The PHC string of the PIN's hash, if one is set.
    hash: Mutex<Option<String>>,
    /// Held for the whole of an attempt, so parallel guesses are judged one after the other.
    attempts: tokio::sync::Mutex<Backoff>,
    sessions: Mutex<Vec<Session>>,
}

/// The growing wait after wrong PINs; times are passed in, so tests need no clock.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
    not_before: Option<Instant>,
}

/// How an attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Right,
    /// Wrong; the next attempt is judged only after `wait`.
    Wrong {
        failures: u32,
        wait: Duration,
    },
    /// Not judged: wrong PINs came before, and this came before their wait was over.
    TooSoon(Duration),
    /// No PIN is set.
    NoPin,
}

struct Session {
    token: String,
    uid: u32,
    last_used: Instant,
}

/// Proof that an operator action may go ahead: no PIN is set, the caller is root, or the
/// request carries an unlock token (`X-Osiris-Unlock`) issued to the caller's uid and used
/// within `daemon.console_lock_secs`. Otherwise the answer is 423 Locked.
pub(crate) struct ConsoleUnlocked;

impl axum::extract::FromRequestParts<Arc<Shared>> for ConsoleUnlocked {
    type Rejection = Fail;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        shared: &Arc<Shared>,
    ) -> Result<ConsoleUnlocked, Fail> {
        let pin = &shared.console_pin;
        if !pin.is_set() {
            return Ok(ConsoleUnlocked);
        }
        let uid = current_peer().map(|peer| peer.uid);
        if uid == Some(0) {
            return Ok(ConsoleUnlocked);
        }
        if let Some(uid) = uid
            && pin.session_valid(&parts.headers, uid, Instant::now())
        {
            return Ok(ConsoleUnlocked);
        }
        tracing::warn!(uid = ?uid, path = %parts.uri.path(), "Refused an operator action: the console is locked.");
        Err(Fail(
            StatusCode::LOCKED,
            "the console is locked: type the console PIN to unlock it first".to_owned(),
            Some(
                "the console asks for the PIN; over the API, POST /v1/console/unlock and send the token as X-Osiris-Unlock".to_owned(),
            ),
        ))
    }
}

impl ConsolePin {
    /// Reads the PIN's hash from `data_dir` if one was set; a file that holds no argon2id hash
    /// is an error (never read as "no PIN").
    pub(crate) fn load(data_dir: &Path, lock_after: Duration) -> anyhow::Result<ConsolePin> {
        let file = data_dir.join(FILE);
        let hash = match std::fs::read_to_string(&file) {
            Ok(text) => {
                let phc = text.trim().to_owned();
                anyhow::ensure!(
                    PasswordHash::new(&phc)
                        .is_ok_and(|parsed| parsed.algorithm.as_str() == "argon2id"),
                    "{} does not hold an argon2id hash; delete it and set the console PIN again with the site's claim code",
                    file.display()
                );
                Some(phc)
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(err).with_context(|| format!("reading {}", file.display())),
        };
        Ok(ConsolePin {
            file,
            lock_after,
            hash: Mutex::new(hash),
            attempts: tokio::sync::Mutex::new(Backoff::default()),
            sessions: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn is_set(&self) -> bool {
        self.hash().is_some()
    }

    /// How long the console may stay idle before it locks (and an unused token lives).
    pub(crate) fn lock_after(&self) -> Duration {
        self.lock_after
    }

    /// Judges one attempt (after the previous one is judged); the hash is checked on a
    /// blocking thread. Wrong PINs make the next attempts wait.
    pub(crate) async fn check(&self, pin: &str) -> Result<Verdict, Fail> {
        let mut backoff = self.attempts.lock().await;
        if let Some(wait) = backoff.wait(Instant::now()) {
            return Ok(Verdict::TooSoon(wait));
        }
        let Some(hash) = self.hash() else {
            return Ok(Verdict::NoPin);
        };
        let pin = pin.to_owned();
        let right = blocking(move || verify(&pin, &hash)).await?;
        if right {
            backoff.succeeded();
            return Ok(Verdict::Right);
        }
        let wait = backoff.failed(Instant::now());
        Ok(Verdict::Wrong {
            failures: backoff.failures,
            wait,
        })
    }

    /// Hashes `pin` (which must follow [`check_rule`]) and replaces the file; every unlock
    /// token handed out before is dropped.
    pub(crate) async fn set(&self, pin: &str) -> Result<(), Fail> {
        let pin = pin.to_owned();
        let file = self.file.clone();
        let phc = blocking(move || -> anyhow::Result<String> {
            let phc = hash(&pin)?;
            durable::write(&file, format!("{phc}\n").as_bytes(), 0o600)
                .with_context(|| format!("saving the console PIN in {}", file.display()))?;
            Ok(phc)
        })
        .await?
        .map_err(|err| internal(format!("{err:#}")))?;
        *self
            .hash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(phc);
        self.sessions().clear();
        Ok(())
    }

    /// A new unlock token for `uid`.
    pub(crate) fn open_session(&self, uid: u32) -> String {
        let bytes: [u8; 32] = rand::random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut sessions = self.sessions();
        let now = Instant::now();
        sessions.retain(|s| now.duration_since(s.last_used) < self.lock_after);
        if sessions.len() >= MAX_SESSIONS {
            sessions.remove(0);
        }
        sessions.push(Session {
            token: token.clone(),
            uid,
            last_used: now,
        });
        token
    }

    /// Whether `headers` carry a live token issued to `uid`; a live one is renewed.
    pub(crate) fn session_valid(&self, headers: &HeaderMap, uid: u32, now: Instant) -> bool {
        let Some(given) = headers
            .get(api::UNLOCK_HEADER)
            .and_then(|value| value.to_str().ok())
        else {
            return false;
        };
        let lock_after = self.lock_after;
        let mut sessions = self.sessions();
        sessions.retain(|s| now.saturating_duration_since(s.last_used) < lock_after);
        match sessions
            .iter_mut()
            .find(|s| s.uid == uid && same(s.token.as_bytes(), given.as_bytes()))
        {
            Some(session) => {
                session.last_used = now;
                true
            }
            None => false,
        }
    }

    fn hash(&self) -> Option<String> {
        self.hash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Vec<Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Backoff {
    /// How long the next attempt must still wait at `now`, if at all.
    pub(crate) fn wait(&self, now: Instant) -> Option<Duration> {
        self.not_before
            .map(|at| at.saturating_duration_since(now))
            .filter(|wait| !wait.is_zero())
    }

    /// Counts a wrong PIN at `now`; returns the wait before the next attempt.
    pub(crate) fn failed(&mut self, now: Instant) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let wait = wait_after(self.failures);
        self.not_before = (!wait.is_zero()).then(|| now + wait);
        wait
    }

    /// A right PIN: the count starts again.
    pub(crate) fn succeeded(&mut self) {
        *self = Backoff::default();
    }
}

/// The wait after `failures` wrong PINs in a row: none for the first [`FREE_TRIES`` - 1], then
/// 1 s, 2 s, 4 s … up to [`MAX_WAIT`].
pub(crate) fn wait_after(failures: u32) -> Duration {
    if failures < FREE_TRIES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_TRIES).min(20);
    Duration::from_secs(1u64 << doublings).min(MAX_WAIT)
}

/// Checks a PIN's shape; `Err` is the error and the hint.
pub(crate) fn check_rule(pin: &str) -> Result<(), (String, String)> {
    let digits = pin.chars().count();
    if (MIN_DIGITS..=MAX_DIGITS).contains(&digits) && pin.chars().all(|c| c.is_ascii_digit()) {
        return Ok(());
    }
    Err((
        format!("a console PIN is {MIN_DIGITS} to {MAX_DIGITS} digits (0-9), nothing else"),
        "choose digits you will remember, e.g. 6 of them; they unlock the console".to_owned(),
    ))
}

/// `POST /v1/console/unlock`: a right PIN gives a token for the caller's uid; a wrong one is
/// refused (403), and after [`FREE_TRIES`] wrong ones every attempt before the wait is over is
/// refused unjudged (429), saying how long to wait. Each attempt is logged, never the PIN.
pub(crate) async fn unlock(
    State(shared): State<Arc<Shared>>,
    Json(request): Json<api::UnlockRequest>,
) -> Answer<api::Unlocked> {
    let Some(uid) = current_peer().map(|peer| peer.uid) else {
        return Err(internal("the caller's credentials are unknown"));
    };
    let pin = &shared.console_pin;
    match pin.check(&request.pin).await? {
        Verdict::Right => {
            let token = pin.open_session(uid);
            tracing::info!(uid, "Console unlocked with the PIN.");
            Ok(Json(api::Unlocked {
                token,
                expires_after_secs: pin.lock_after().as_secs(),
            }))
        }
        Verdict::NoPin => Err(Fail(
            StatusCode::CONFLICT,
            "no console PIN is set, so there is nothing to unlock".to_owned(),
            Some("set one in setup (POST /v1/setup/pin)".to_owned()),
        )),
        verdict => Err(refusal(verdict, "wrong PIN", uid)),
    }
}

/// The refusal for a wrong PIN or one that came too soon (logged with its fields).
pub(crate) fn refusal(verdict: Verdict, wrong: &str, uid: u32) -> Fail {
    match verdict {
        Verdict::Wrong { failures, wait } => {
            tracing::warn!(
                uid,
                failures,
                wait_secs = wait.as_secs(),
                "Refused a console PIN: wrong."
            );
            let then = if wait.is_zero() {
                "try again".to_owned()
            } else {
                format!("wait {} before trying again", seconds(wait))
            };
            Fail(
                StatusCode::FORBIDDEN,
                format!("{wrong}: {then}"),
                Some(
                    "after 3 wrong PINs each try waits twice as long (at most 5 minutes); your IT partner can reset the PIN with the site's claim code".to_owned(),
                ),
            )
        }
        Verdict::TooSoon(wait) => {
            tracing::warn!(
                uid,
                wait_secs = wait.as_secs(),
                "Refused a console PIN unchecked: it came before the wait after wrong ones was over."
            );
            Fail(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many wrong PINs: wait {} before trying again",
                    seconds(wait)
                ),
                Some("the PIN was not checked; try again after the wait".to_owned()),
            )
        }
        Verdict::Right | Verdict::NoPin => {
            internal("a PIN refusal for an attempt that was not refused")
        }
    }
}

/// `4 s`, rounded up so a caller who waits that long is judged.
fn seconds(wait: Duration) -> String {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    format!("{secs} s")
}

/// argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane), as Central Command
/// hashes its passwords.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash(pin: &str) -> anyhow::Result<String> {
    let salt: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt).map_err(|err| anyhow::anyhow!("salt: {err}"))?;
    argon2()
        .hash_password(pin.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| anyhow::anyhow!("hashing the console PIN: {err}"))
}

fn verify(pin: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|parsed| argon2().verify_password(pin.as_bytes(), &parsed).is_ok())
}

/// Constant-time equality of two byte strings of the same length.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_after_three_wrong_pins_and_stops_at_five_minutes() {
        let waits: Vec<u64> = (1..=14).map(|n| wait_after(n).as_secs()).collect();
        assert_eq!(
            waits,
            [0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
        );
        assert_eq!(wait_after(u32::MAX), MAX_WAIT);
    }

    #[test]
    fn backoff_follows_the_clock_it_is_given() {
        let start = Instant::now();
        let mut backoff = Backoff::default();
        assert_eq!(backoff.failed(start), Duration::ZERO);
        assert_eq!(backoff.failed(start), Duration::ZERO);
        assert_eq!(backoff.wait(start), None);
        assert_eq!(backoff.failed(start), Duration::from_secs(1));
        assert_eq!(
            backoff.wait(start + Duration::from_millis(400)),
            Some(Duration::from_millis(600))
        );
        assert_eq!(backoff.wait(start + Duration::from_secs(1)), None);
        let later = start + Duration::from_secs(1);
        assert_eq!(backoff.failed(later), Duration::from_secs(2));
        assert!(backoff.wait(later + Duration::from_secs(1)).is_some());
        backoff.succeeded();
        assert_eq!(backoff.wait(later), None);
        assert_eq!(
            backoff.failed(later),
            Duration::ZERO,
            "counting starts again"
        );
    }

    #[test]
    fn pins_are_four_to_twelve_digits() {
        for ok in ["0000", "123456", "000000000000"] {
            assert!(check_rule(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "123",
            "1234567890123",
            "12a4",
            " 1234",
            "１２３４",
            "12-34",
        ] {
            let (error, _) = check_rule(bad).expect_err(bad);
            assert_eq!(error, "a console PIN is 4 to 12 digits (0-9), nothing else");
        }
    }

    #[tokio::test]
    async fn the_file_is_private_holds_no_pin_and_tokens_are_bound_to_their_user() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let pin = ConsolePin::load(dir.path(), Duration::from_secs(300)).expect("load");
        assert!(!pin.is_set());
        assert_eq!(pin.check("1234").await.ok(), Some(Verdict::NoPin));
        pin.set("482913").await.expect("set");
        let file = dir.path().join(FILE);
        let text = std::fs::read_to_string(&file).expect("read");
        assert!(text.starts_with("$argon2id$"), "{text}");
        assert!(!text.contains("482913"));
        let mode = std::fs::metadata(&file).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A restart reads it back.
        let again = ConsolePin::load(dir.path(), Duration::from_secs(300)).expect("reload");
        assert_eq!(again.check("482913").await.ok(), Some(Verdict::Right));
        assert!(matches!(
            again.check("482914").await.ok(),
            Some(Verdict::Wrong { failures: 1, .. })
        ));

        let token = pin.open_session(1000);
        let mut headers = HeaderMap::new();
        headers.insert(api::UNLOCK_HEADER, token.parse().expect("header"));
        let now = Instant::now();
        assert!(pin.session_valid(&headers, 1000, now));
        assert!(!pin.session_valid(&headers, 1001, now), "another user");
        assert!(!pin.session_valid(&HeaderMap::new(), 1000, now));
        // Used within the lock time it lives on; unused for as long, it is gone.
        assert!(pin.session_valid(&headers, 1000, now + Duration::from_secs(299)));
        assert!(!pin.session_valid(&headers, 1000, now + Duration::from_secs(600)));
        // A new PIN drops every token.
        let token = pin.open_session(1000);
        headers.insert(api::UNLOCK_HEADER, token.parse().expect("header"));
        pin.set("5555").await.expect("set");
        assert!(!pin.session_valid(&headers, 1000, Instant::now()));
    }

    #[test]
    fn a_damaged_file_is_refused_not_read_as_no_pin() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE), "1234\n").expect("write");
        let err = ConsolePin::load(dir.path(), Duration::from_secs(300))
            .err()
            .expect("refused");
        assert!(
            err.to_string().contains("does not hold an argon2id hash"),
            "{err}"
        );
    }
}
