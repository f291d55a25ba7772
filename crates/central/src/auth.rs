//! Who a request comes from: password login (argon2id) with TOTP as the second factor (required
//! for partner roles), rate limiting per address and lockout per account, sessions kept in
//! PostgreSQL by the SHA-256 of their token, and the session's CSRF token.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::password;
use crate::scope::{Role, Scope};
use crate::totp;

/// Failed logins from one address within [`RATE_WINDOW_SECS`] before it must wait.
pub const MAX_FAILS_PER_ADDRESS: i64 = 20;
/// The window of the per-address limit.
pub const RATE_WINDOW_SECS: i64 = 15 * 60;
/// Failed logins of one account before it is locked for [`LOCKOUT_SECS`].
pub const MAX_FAILS_PER_ACCOUNT: i32 = 5;
/// How long a locked account stays locked.
pub const LOCKOUT_SECS: i64 = 15 * 60;
/// A session ends this long after its last use, and at most [`SESSION_MAX_SECS`] after login.
pub const SESSION_IDLE_SECS: i64 = 30 * 60;
/// The longest a session lives.
pub const SESSION_MAX_SECS: i64 = 12 * 3600;

/// A hash of a password nobody has, verified when the account does not exist so that unknown
/// and known addresses take the same time.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| password::hash("no account has this password").unwrap_or_default())
}

/// Why a login was refused. The words never say whether the account exists.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Wrong e-mail, password or code.
    #[error("the e-mail address, password or code is wrong")]
    Invalid,
    /// The password was right; the authenticator code is needed.
    #[error("enter the 6-digit code from your authenticator app")]
    TotpRequired,
    /// Too many failures from this address.
    #[error("too many failed logins from this address; wait 15 minutes")]
    RateLimited,
    /// Too many failures for this account.
    #[error(
        "this account is locked after repeated failed logins; wait 15 minutes or ask your partner administrator"
    )]
    Locked,
    /// Access that has expired (auditors).
    #[error("this account's access has expired; ask the partner for a new invitation")]
    Expired,
    /// No valid session.
    #[error("log in first")]
    NoSession,
    /// The session still needs its second factor.
    #[error("set up or enter your authenticator code first")]
    MfaPending,
    /// A state-changing request without the session's CSRF token.
    #[error("the request lacks this session's X-CSRF-Token header")]
    Csrf,
    /// The database.
    #[error("database")]
    Db(#[from] sqlx::Error),
    /// The operating system's randomness.
    #[error("randomness: {0}")]
    Random(String),
}

/// A logged-in session as a request sees it.
#[derive(Debug, Clone)]
pub struct Session {
    /// What the user may see and do.
    pub scope: Scope,
    /// The user's e-mail address.
    pub email: String,
    /// The token state-changing requests must echo in `X-CSRF-Token`.
    pub csrf_token: String,
    /// False until the second factor is done.
    pub mfa_done: bool,
    /// SHA-256 of the cookie token (to end the session).
    pub token_sha256: [u8; 32],
}

/// A successful password step: the cookie token to set and the session.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    /// The cookie's value (never stored).
    pub token: String,
    /// The session.
    pub session: Session,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn random_token() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|err| AuthError::Random(err.to_string()))?;
    Ok(B64URL.encode(bytes))
}

/// SHA-256 of a session token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

struct UserRow {
    id: i64,
    partner_id: i64,
    practice_id: Option<i64>,
    email: String,
    role: String,
    password_hash: String,
    totp_secret: Option<Vec<u8>>,
    totp_last_step: Option<i64>,
    expired: bool,
    locked: bool,
}

/// Checks e-mail, password and (when the account has one, or its role requires one) the TOTP
/// code; on success opens a session. `address` is the client's IP for rate limiting.
pub async fn login(
    pool: &PgPool,
    email: &str,
    secret: &str,
    code: Option<&str>,
    address: &str,
) -> Result<LoggedIn, AuthError> {
    let email = email.trim().to_lowercase();
    let recent_fails: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM login_attempts WHERE ip = $1 AND NOT ok AND at > now() - make_interval(secs => $2)",
    )
    .bind(address)
    .bind(RATE_WINDOW_SECS as f64)
    .fetch_one(pool)
    .await?;
    if recent_fails >= MAX_FAILS_PER_ADDRESS {
        return Err(AuthError::RateLimited);
    }
    type Row = (
        i64,
        i64,
        Option<i64>,
        String,
        String,
        String,
        Option<Vec<u8>>,
        Option<i64>,
        bool,
        bool,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, partner_id, practice_id, email, role::text AS role, password_hash, totp_secret, totp_last_step,
                coalesce(expires_at < now(), false) AS expired, coalesce(locked_until > now(), false) AS locked
         FROM users WHERE lower(email) = $1",
    )
    .bind(&email)
    .fetch_optional(pool)
    .await?;
    let user = row.map(
        |(
            id,
            partner_id,
            practice_id,
            email,
            role,
            password_hash,
            totp_secret,
            totp_last_step,
            expired,
            locked,
        )| UserRow {
            id,
            partner_id,
            practice_id,
            email,
            role,
            password_hash,
            totp_secret,
            totp_last_step,
            expired,
            locked,
        },
    );
    let Some(user) = user else {
        // The same work as for a real account, then the same answer.
        let _ = password::verify(secret, decoy_hash());
        record_attempt(pool, address, &email, false).await?;
        return Err(AuthError::Invalid);
    };
    if user.locked {
        record_attempt(pool, address, &email, false).await?;
        return Err(AuthError::Locked);
    }
    if !password::verify(secret, &user.password_hash) {
        fail(pool, &user, address).await?;
        return Err(AuthError::Invalid);
    }
    if user.expired {
        record_attempt(pool, address, &email, false).await?;
        return Err(AuthError::Expired);
    }
    let role = Role::parse(&user.role).ok_or(AuthError::Invalid)?;
    let mfa_done = match &user.totp_secret {
        Some(totp_secret) => {
            let Some(code) = code else {
                return Err(AuthError::TotpRequired);
            };
            let step = totp::check(totp_secret, code, u64::try_from(now()).unwrap_or(0));
            let step = step.and_then(|step| i64::try_from(step).ok());
            match step {
                Some(step) if user.totp_last_step.is_none_or(|last| step > last) => {
                    sqlx::query("UPDATE users SET totp_last_step = $1 WHERE id = $2")
                        .bind(step)
                        .bind(user.id)
                        .execute(pool)
                        .await?;
                    true
                }
                // A wrong code, or a code already used: counts as a failure.
                _ => {
                    fail(pool, &user, address).await?;
                    return Err(AuthError::Invalid);
                }
            }
        }
        // Partner roles must enrol before they can do anything else.
        None => !role.requires_mfa(),
    };
    sqlx::query("UPDATE users SET failed_logins = 0 WHERE id = $1")
        .bind(user.id)
        .execute(pool)
        .await?;
    record_attempt(pool, address, &email, true).await?;
    let token = random_token()?;
    let csrf_token = random_token()?;
    let hash = token_hash(&token);
    sqlx::query(
        "INSERT INTO sessions (token_sha256, user_id, csrf_token, mfa_done, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
    )
    .bind(hash.as_slice())
    .bind(user.id)
    .bind(&csrf_token)
    .bind(mfa_done)
    .bind(SESSION_MAX_SECS as f64)
    .execute(pool)
    .await?;
    audit(
        pool,
        &user,
        "session.login",
        serde_json::json!({"address": address, "mfa_done": mfa_done}),
    )
    .await?;
    Ok(LoggedIn {
        token,
        session: Session {
            scope: Scope {
                user_id: user.id,
                partner_id: user.partner_id,
                practice_id: user.practice_id,
                role,
            },
            email: user.email,
            csrf_token,
            mfa_done,
            token_sha256: hash,
        },
    })
}

async fn fail(pool: &PgPool, user: &UserRow, address: &str) -> Result<(), AuthError> {
    // Both CASEs read the row's old value: the fifth failure locks and restarts the count.
    sqlx::query(
        "UPDATE users SET
             failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END,
             locked_until = CASE WHEN failed_logins + 1 >= $2 THEN now() + make_interval(secs => $3) ELSE locked_until END
         WHERE id = $1",
    )
    .bind(user.id)
    .bind(MAX_FAILS_PER_ACCOUNT)
    .bind(LOCKOUT_SECS as f64)
    .execute(pool)
    .await?;
    record_attempt(pool, address, &user.email, false).await?;
    audit(
        pool,
        user,
        "session.login_failed",
        serde_json::json!({"address": address}),
    )
    .await?;
    Ok(())
}

async fn record_attempt(
    pool: &PgPool,
    address: &str,
    email: &str,
    ok: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO login_attempts (ip, email, ok) VALUES ($1, $2, $3)")
        .bind(address)
        .bind(email)
        .bind(ok)
        .execute(pool)
        .await?;
    Ok(())
}

async fn audit(
    pool: &PgPool,
    user: &UserRow,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (partner_id, actor, action, detail) VALUES ($1, $2, $3, $4)",
    )
    .bind(user.partner_id)
    .bind(format!("user:{}", user.id))
    .bind(action)
    .bind(detail)
    .execute(pool)
    .await?;
    Ok(())
}

/// The session of a cookie token, if it is valid; refreshes its idle timer.
pub async fn session(pool: &PgPool, token: &str) -> Result<Option<Session>, AuthError> {
    let hash = token_hash(token);
    type Row = (i64, i64, Option<i64>, String, String, String, bool);
    let row: Option<Row> = sqlx::query_as(
        "UPDATE sessions s SET last_seen = now()
         FROM users u
         WHERE s.token_sha256 = $1 AND u.id = s.user_id
           AND s.expires_at > now() AND s.last_seen > now() - make_interval(secs => $2)
           AND coalesce(u.expires_at > now(), true)
         RETURNING u.id, u.partner_id, u.practice_id, u.email, u.role::text, s.csrf_token, s.mfa_done",
    )
    .bind(hash.as_slice())
    .bind(SESSION_IDLE_SECS as f64)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(
        |(user_id, partner_id, practice_id, email, role, csrf_token, mfa_done)| {
            Some(Session {
                scope: Scope {
                    user_id,
                    partner_id,
                    practice_id,
                    role: Role::parse(&role)?,
                },
                email,
                csrf_token,
                mfa_done,
                token_sha256: hash,
            })
        },
    ))
}

/// Ends the session.
pub async fn logout(pool: &PgPool, session: &Session) -> Result<(), AuthError> {
    sqlx::query("DELETE FROM sessions WHERE token_sha256 = $1")
        .bind(session.token_sha256.as_slice())
        .execute(pool)
        .await?;
    Ok(())
}

/// Starts TOTP enrolment: a new secret kept as pending; returns its `otpauth://` URI.
pub async fn totp_begin(
    pool: &PgPool,
    session: &Session,
    issuer: &str,
) -> Result<String, AuthError> {
    let secret = totp::new_secret().map_err(|err| AuthError::Random(err.to_string()))?;
    sqlx::query("UPDATE users SET totp_pending = $1 WHERE id = $2")
        .bind(secret.as_slice())
        .bind(session.scope.user_id)
        .execute(pool)
        .await?;
    Ok(totp::otpauth_uri(issuer, &session.email, &secret))
}

/// The pending enrolment's `otpauth://` URI, starting one when none is pending (so that reloading
/// the enrolment page or mistyping a code keeps the key already scanned).
pub async fn totp_pending_or_begin(
    pool: &PgPool,
    session: &Session,
    issuer: &str,
) -> Result<String, AuthError> {
    let pending: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT totp_pending FROM users WHERE id = $1")
            .bind(session.scope.user_id)
            .fetch_one(pool)
            .await?;
    match pending {
        Some(secret) => Ok(totp::otpauth_uri(issuer, &session.email, &secret)),
        None => totp_begin(pool, session, issuer).await,
    }
}

/// Confirms enrolment with a code from the pending secret: the secret becomes the account's
/// and this session's second factor is done.
pub async fn totp_confirm(pool: &PgPool, session: &Session, code: &str) -> Result<(), AuthError> {
    let pending: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT totp_pending FROM users WHERE id = $1")
            .bind(session.scope.user_id)
            .fetch_one(pool)
            .await?;
    let Some(pending) = pending else {
        return Err(AuthError::Invalid);
    };
    let step = totp::check(&pending, code, u64::try_from(now()).unwrap_or(0))
        .and_then(|step| i64::try_from(step).ok())
        .ok_or(AuthError::Invalid)?;
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = $1 WHERE id = $2")
        .bind(step)
        .bind(session.scope.user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE sessions SET mfa_done = true WHERE token_sha256 = $1")
        .bind(session.token_sha256.as_slice())
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO audit_log (partner_id, actor, action, detail) VALUES ($1, $2, 'user.totp_enrolled', '{}')")
        .bind(session.scope.partner_id)
        .bind(format!("user:{}", session.scope.user_id))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
