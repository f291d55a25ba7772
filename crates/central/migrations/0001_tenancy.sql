-- Tenancy: partner -> practice -> site -> appliance, the partner's users, and the audit log.
-- Every tenant-owned row carries partner_id so one typed scope filters every query.

CREATE TABLE partners (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX partners_name ON partners (lower(name));

CREATE TABLE practices (
    id          BIGSERIAL PRIMARY KEY,
    partner_id  BIGINT NOT NULL REFERENCES partners (id),
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (id, partner_id)
);
CREATE UNIQUE INDEX practices_name ON practices (partner_id, lower(name));

CREATE TABLE sites (
    id          BIGSERIAL PRIMARY KEY,
    partner_id  BIGINT NOT NULL,
    practice_id BIGINT NOT NULL,
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A site belongs to a practice of the same partner: the pair is checked, not trusted.
    FOREIGN KEY (practice_id, partner_id) REFERENCES practices (id, partner_id),
    UNIQUE (id, partner_id)
);
CREATE UNIQUE INDEX sites_name ON sites (practice_id, lower(name));

CREATE TYPE user_role AS ENUM ('partner_admin', 'partner_technician', 'practice_viewer', 'auditor');

CREATE TABLE users (
    id              BIGSERIAL PRIMARY KEY,
    partner_id      BIGINT NOT NULL REFERENCES partners (id),
    practice_id     BIGINT,
    email           TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND position('@' IN email) > 1),
    role            user_role NOT NULL,
    password_hash   TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    totp_secret     BYTEA,
    -- Auditor access always expires.
    expires_at      TIMESTAMPTZ,
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    locked_until    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (practice_id, partner_id) REFERENCES practices (id, partner_id),
    CHECK (role <> 'practice_viewer' OR practice_id IS NOT NULL),
    CHECK (role <> 'auditor' OR expires_at IS NOT NULL)
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

-- Append-only: every user action and every administrative change, never edited.
CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    partner_id  BIGINT REFERENCES partners (id),
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail      JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_partner ON audit_log (partner_id, id);

CREATE FUNCTION refuse_append_only_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END;
$$;
CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_append_only_change();
