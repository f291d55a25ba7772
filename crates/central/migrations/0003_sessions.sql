-- Web sessions, TOTP state and login attempts. Sessions live here, not in a server's memory, so
-- any instance serves any request.

ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
-- A secret offered at enrolment, stored only once a code from it is confirmed.
ALTER TABLE users ADD COLUMN totp_pending BYTEA;

CREATE TABLE sessions (
    -- SHA-256 of the cookie's token: a copy of this table does not let anyone in.
    token_sha256    BYTEA PRIMARY KEY CHECK (length(token_sha256) = 32),
    user_id         BIGINT NOT NULL REFERENCES users (id),
    csrf_token      TEXT NOT NULL,
    -- False until the second factor was given (or enrolled): only TOTP enrolment is allowed.
    mfa_done        BOOLEAN NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen       TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE login_attempts (
    id      BIGSERIAL PRIMARY KEY,
    ip      TEXT NOT NULL,
    email   TEXT NOT NULL,
    ok      BOOLEAN NOT NULL,
    at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_ip ON login_attempts (ip, at);
