//! The endpoint agents' registry: enrollment tokens (kept as SHA-256 only), enrolled agents with
//! their device keys and client certificates, and each agent's durably stored sequence number,
//! which moves in the same transaction as the evidence that records the items.

use std::path::Path;

use evidence::log::BundleDraft;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqliteRow};

use crate::db::classify;
use crate::writer::Request;
use crate::{Appended, Store, StoreError};

/// A new enrollment token, as `osiris agent token create` makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgentToken {
    /// Its public ID (shown in lists, sealed in enrollment bundles).
    pub id: String,
    /// SHA-256 of the token text; the token itself is never stored.
    pub hash: [u8; 32],
    /// How many enrollments it allows.
    pub uses: u32,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; refused from then on.
    pub expires_at: i64,
    /// Who made it (as an operator action's `by`).
    pub created_by: String,
}

/// A stored enrollment token (without its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentTokenRecord {
    pub id: String,
    pub uses_total: u32,
    pub uses_left: u32,
    pub created_at: i64,
    pub expires_at: i64,
    pub created_by: String,
    pub revoked_at: Option<i64>,
}

/// Why a token was refused. The agent is told only that its token is not valid; the reason goes
/// into the appliance's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// No token has this hash.
    Unknown,
    /// Every use is taken.
    UsedUp,
    /// Past its expiry.
    Expired,
    /// Revoked by an operator.
    Revoked,
}

impl TokenRefusal {
    /// A word for logs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::UsedUp => "used up",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// An agent being enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgent {
    pub agent_id: String,
    pub hostname: String,
    pub os: String,
    pub os_version: String,
    /// `linux-x86_64` or `windows-x86_64`.
    pub platform: String,
    pub agent_version: String,
    /// The Ed25519 device public key.
    pub device_public_key: [u8; 32],
    /// SHA-256 of its client certificate (DER).
    pub cert_sha256: [u8; 32],
    /// Unix seconds.
    pub cert_not_after: i64,
    /// The token it enrolled with.
    pub token_id: String,
    /// Unix seconds.
    pub enrolled_at: i64,
}

/// An enrolled agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    pub agent: NewAgent,
    /// The bundle that recorded the enrollment.
    pub enrollment_seq: u64,
    /// When it was revoked (unix seconds), if it was.
    pub revoked_at: Option<i64>,
    /// Every item up to this sequence number is sealed.
    pub stored_seq: u64,
    /// When it last delivered items (unix seconds).
    pub last_seen_at: Option<i64>,
}

/// What an append does to the registry in the same transaction as its bundles.
#[derive(Debug, Clone)]
pub(crate) enum Effect {
    /// Insert the agent; `draft` is the index of the enrollment bundle in the append.
    Enrolled { agent: Box<NewAgent>, draft: usize },
    /// The agent's items up to `up_to` are in this append.
    Stored {
        agent_id: String,
        up_to: u64,
        at: i64,
    },
    /// Mark the agent revoked; `draft` is the index of the revocation bundle.
    Revoked {
        agent_id: String,
        at: i64,
        draft: usize,
    },
}

/// Applies `effects` inside the append's transaction; `seqs` are the append's sealed bundles.
pub(crate) async fn apply(
    tx: &mut SqliteConnection,
    effects: &[Effect],
    seqs: &[u64],
) -> Result<(), sqlx::Error> {
    let seq_of = |draft: usize| seqs.get(draft).map(|seq| to_i64(*seq));
    for effect in effects {
        match effect {
            Effect::Enrolled { agent, draft } => {
                sqlx::query(
                    "INSERT INTO agents (agent_id, hostname, os, os_version, platform, agent_version, \
                     device_public_key, cert_sha256, cert_not_after, token_id, enrolled_at, enrollment_seq) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&agent.agent_id)
                .bind(&agent.hostname)
                .bind(&agent.os)
                .bind(&agent.os_version)
                .bind(&agent.platform)
                .bind(&agent.agent_version)
                .bind(agent.device_public_key.as_slice())
                .bind(agent.cert_sha256.as_slice())
                .bind(agent.cert_not_after)
                .bind(&agent.token_id)
                .bind(agent.enrolled_at)
                .bind(seq_of(*draft))
                .execute(&mut *tx)
                .await?;
            }
            Effect::Stored {
                agent_id,
                up_to,
                at,
            } => {
                sqlx::query(
                    "UPDATE agents SET stored_seq = max(stored_seq, ?), last_seen_at = ? WHERE agent_id = ?",
                )
                .bind(to_i64(*up_to))
                .bind(at)
                .bind(agent_id)
                .execute(&mut *tx)
                .await?;
            }
            Effect::Revoked {
                agent_id,
                at,
                draft,
            } => {
                sqlx::query(
                    "UPDATE agents SET revoked_at = ?, revocation_seq = ? WHERE agent_id = ? AND revoked_at IS NULL",
                )
                .bind(at)
                .bind(seq_of(*draft))
                .bind(agent_id)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    Ok(())
}

/// Takes one use of the token with `hash` if it is valid at `now`.
pub(crate) async fn take_token(
    conn: &mut SqliteConnection,
    db_path: &Path,
    hash: &[u8; 32],
    now: i64,
) -> Result<Result<String, TokenRefusal>, StoreError> {
    let fail = |err| classify(db_path, "taking an enrollment token", err);
    let taken: Option<String> = sqlx::query_scalar(
        "UPDATE agent_tokens SET uses_left = uses_left - 1 \
         WHERE hash = ? AND uses_left > 0 AND expires_at > ? AND revoked_at IS NULL RETURNING id",
    )
    .bind(hash.as_slice())
    .bind(now)
    .fetch_optional(&mut *conn)
    .await
    .map_err(fail)?;
    if let Some(id) = taken {
        return Ok(Ok(id));
    }
    let row =
        sqlx::query("SELECT uses_left, expires_at, revoked_at FROM agent_tokens WHERE hash = ?")
            .bind(hash.as_slice())
            .fetch_optional(&mut *conn)
            .await
            .map_err(fail)?;
    let refusal = match row {
        None => TokenRefusal::Unknown,
        Some(row) if row.get::<Option<i64>, _>("revoked_at").is_some() => TokenRefusal::Revoked,
        Some(row) if row.get::<i64, _>("expires_at") <= now => TokenRefusal::Expired,
        Some(_) => TokenRefusal::UsedUp,
    };
    Ok(Err(refusal))
}

/// Gives back a use taken by [`take_token`] when the enrollment could not be recorded.
pub(crate) async fn return_token(
    conn: &mut SqliteConnection,
    db_path: &Path,
    id: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE agent_tokens SET uses_left = min(uses_total, uses_left + 1) WHERE id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|err| classify(db_path, "returning an enrollment token's use", err))
}

const AGENT_COLUMNS: &str = "agent_id, hostname, os, os_version, platform, agent_version, \
    device_public_key, cert_sha256, cert_not_after, token_id, enrolled_at, enrollment_seq, \
    revoked_at, stored_seq, last_seen_at";

impl Store {
    /// Stores a new enrollment token.
    pub async fn create_agent_token(&self, token: NewAgentToken) -> Result<(), StoreError> {
        self.ask(|ack| Request::AgentToken {
            op: TokenOp::Create(token),
            ack,
        })
        .await?
        .map(|_| ())
    }

    /// Revokes a token; `false` when no unrevoked token has that ID.
    pub async fn revoke_agent_token(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        self.ask(|ack| Request::AgentToken {
            op: TokenOp::Revoke {
                id: id.to_owned(),
                at,
            },
            ack,
        })
        .await?
        .map(|changed| changed > 0)
    }

    /// Takes one use of the token whose SHA-256 is `hash`; the token's ID, or why it is refused.
    pub async fn take_agent_token(
        &self,
        hash: [u8; 32],
        now: i64,
    ) -> Result<Result<String, TokenRefusal>, StoreError> {
        self.ask(|ack| Request::TakeAgentToken { hash, now, ack })
            .await?
    }

    /// Gives back a use of token `id` (an enrollment that took it could not be recorded).
    pub async fn return_agent_token(&self, id: &str) -> Result<(), StoreError> {
        self.ask(|ack| Request::AgentToken {
            op: TokenOp::Return(id.to_owned()),
            ack,
        })
        .await?
        .map(|_| ())
    }

    /// Every enrollment token, newest first.
    pub async fn agent_tokens(&self) -> Result<Vec<AgentTokenRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, uses_total, uses_left, created_at, expires_at, created_by, revoked_at \
             FROM agent_tokens ORDER BY created_at DESC, id",
        )
        .fetch_all(&self.readers)
        .await
        .map_err(|err| classify(&self.db_path, "reading enrollment tokens", err))?;
        Ok(rows
            .iter()
            .map(|row| AgentTokenRecord {
                id: row.get("id"),
                uses_total: u32::try_from(row.get::<i64, _>("uses_total")).unwrap_or(0),
                uses_left: u32::try_from(row.get::<i64, _>("uses_left")).unwrap_or(0),
                created_at: row.get("created_at"),
                expires_at: row.get("expires_at"),
                created_by: row.get("created_by"),
                revoked_at: row.get("revoked_at"),
            })
            .collect())
    }

    /// Records an enrollment: seals `draft` (the `agent_enrollment` bundle) and inserts the agent
    /// in the same transaction.
    pub async fn enroll_agent(
        &self,
        agent: NewAgent,
        draft: BundleDraft,
    ) -> Result<Appended, StoreError> {
        let mut appended = self
            .append_with(
                vec![draft],
                vec![Effect::Enrolled {
                    agent: Box::new(agent),
                    draft: 0,
                }],
            )
            .await?;
        appended.pop().ok_or(StoreError::WriterStopped)
    }

    /// Seals an agent's items (`drafts`, in its sequence order) and records that every item up to
    /// `up_to` is stored, in one transaction: an item is sealed once however often it is resent.
    pub async fn append_agent_items(
        &self,
        agent_id: &str,
        up_to: u64,
        at: i64,
        drafts: Vec<BundleDraft>,
    ) -> Result<Vec<Appended>, StoreError> {
        self.append_with(
            drafts,
            vec![Effect::Stored {
                agent_id: agent_id.to_owned(),
                up_to,
                at,
            }],
        )
        .await
    }

    /// Revokes an agent: seals `draft` (the `agent_revocation` bundle) and marks it in one
    /// transaction. `None` when no unrevoked agent has that ID (nothing is sealed).
    pub async fn revoke_agent(
        &self,
        agent_id: &str,
        at: i64,
        draft: BundleDraft,
    ) -> Result<Option<Appended>, StoreError> {
        match self.agent(agent_id).await? {
            Some(record) if record.revoked_at.is_none() => {}
            _ => return Ok(None),
        }
        let mut appended = self
            .append_with(
                vec![draft],
                vec![Effect::Revoked {
                    agent_id: agent_id.to_owned(),
                    at,
                    draft: 0,
                }],
            )
            .await?;
        Ok(appended.pop())
    }

    /// Replaces an agent's certificate after a renewal; the previous one stays valid until it
    /// expires.
    pub async fn renew_agent_certificate(
        &self,
        agent_id: &str,
        cert_sha256: [u8; 32],
        not_after: i64,
    ) -> Result<(), StoreError> {
        self.ask(|ack| Request::AgentToken {
            op: TokenOp::Renew {
                agent_id: agent_id.to_owned(),
                cert_sha256,
                not_after,
            },
            ack,
        })
        .await?
        .map(|_| ())
    }

    /// The agent whose current (or previous, unexpired at `now`) client certificate has this
    /// SHA-256, revoked or not.
    pub async fn agent_by_certificate(
        &self,
        cert_sha256: &[u8; 32],
        now: i64,
    ) -> Result<Option<AgentRecord>, StoreError> {
        let sql = format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE cert_sha256 = ?1 \
             UNION ALL SELECT {AGENT_COLUMNS} FROM agents WHERE prev_cert_sha256 = ?1 AND prev_cert_not_after > ?2 LIMIT 1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(cert_sha256.as_slice())
            .bind(now)
            .fetch_optional(&self.readers)
            .await
            .map_err(|err| classify(&self.db_path, "reading an agent", err))?;
        row.map(|row| agent_from_row(&self.db_path, &row))
            .transpose()
    }

    /// One agent by ID.
    pub async fn agent(&self, agent_id: &str) -> Result<Option<AgentRecord>, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE agent_id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(agent_id)
            .fetch_optional(&self.readers)
            .await
            .map_err(|err| classify(&self.db_path, "reading an agent", err))?;
        row.map(|row| agent_from_row(&self.db_path, &row))
            .transpose()
    }

    /// Every agent, by ID.
    pub async fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents ORDER BY agent_id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.readers)
            .await
            .map_err(|err| classify(&self.db_path, "reading agents", err))?;
        rows.iter()
            .map(|row| agent_from_row(&self.db_path, row))
            .collect()
    }
}

/// Registry writes that need no bundle.
#[derive(Debug, Clone)]
pub(crate) enum TokenOp {
    Create(NewAgentToken),
    Revoke {
        id: String,
        at: i64,
    },
    Return(String),
    Renew {
        agent_id: String,
        cert_sha256: [u8; 32],
        not_after: i64,
    },
}

/// Runs `op`; the number of rows changed.
pub(crate) async fn token_op(
    conn: &mut SqliteConnection,
    db_path: &Path,
    op: TokenOp,
) -> Result<u64, StoreError> {
    let res = match op {
        TokenOp::Create(token) => sqlx::query(
            "INSERT INTO agent_tokens (id, hash, uses_total, uses_left, created_at, expires_at, created_by) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&token.id)
        .bind(token.hash.as_slice())
        .bind(i64::from(token.uses))
        .bind(i64::from(token.uses))
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(&token.created_by)
        .execute(&mut *conn)
        .await,
        TokenOp::Revoke { id, at } => {
            sqlx::query("UPDATE agent_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(at)
                .bind(&id)
                .execute(&mut *conn)
                .await
        }
        TokenOp::Return(id) => return return_token(conn, db_path, &id).await.map(|()| 1),
        TokenOp::Renew {
            agent_id,
            cert_sha256,
            not_after,
        } => sqlx::query(
            "UPDATE agents SET prev_cert_sha256 = cert_sha256, prev_cert_not_after = cert_not_after, \
             cert_sha256 = ?, cert_not_after = ? WHERE agent_id = ?",
        )
        .bind(cert_sha256.as_slice())
        .bind(not_after)
        .bind(&agent_id)
        .execute(&mut *conn)
        .await,
    };
    res.map(|done| done.rows_affected())
        .map_err(|err| classify(db_path, "changing the agent registry", err))
}

fn agent_from_row(db_path: &Path, row: &SqliteRow) -> Result<AgentRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt {
        path: db_path.to_owned(),
        detail: format!("agent row has a bad {what}"),
    };
    let key: Vec<u8> = row.get("device_public_key");
    let cert: Vec<u8> = row.get("cert_sha256");
    Ok(AgentRecord {
        agent: NewAgent {
            agent_id: row.get("agent_id"),
            hostname: row.get("hostname"),
            os: row.get("os"),
            os_version: row.get("os_version"),
            platform: row.get("platform"),
            agent_version: row.get("agent_version"),
            device_public_key: key.try_into().map_err(|_| corrupt("device key"))?,
            cert_sha256: cert.try_into().map_err(|_| corrupt("certificate hash"))?,
            cert_not_after: row.get("cert_not_after"),
            token_id: row.get("token_id"),
            enrolled_at: row.get("enrolled_at"),
        },
        enrollment_seq: u64::try_from(row.get::<i64, _>("enrollment_seq"))
            .map_err(|_| corrupt("enrollment seq"))?,
        revoked_at: row.get("revoked_at"),
        stored_seq: u64::try_from(row.get::<i64, _>("stored_seq"))
            .map_err(|_| corrupt("stored seq"))?,
        last_seen_at: row.get("last_seen_at"),
    })
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
