-- Appliances, their enrollment by claim code, the witness's heads and forks, pushes and alerts.

-- An appliance asks to be claimed: it proves knowledge of the claim code its console shows by an
-- HMAC over its own keys, so the code itself never travels. Unclaimed requests expire.
CREATE TABLE enrollments (
    id              BIGSERIAL PRIMARY KEY,
    appliance_key   TEXT NOT NULL,
    tls_public_key  BYTEA NOT NULL,
    claim_proof     BYTEA NOT NULL CHECK (length(claim_proof) = 32),
    requested_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL,
    -- Set when a partner claims it; a claimed enrollment is never claimed again.
    appliance_id    BIGINT
);
CREATE INDEX enrollments_open ON enrollments (expires_at) WHERE appliance_id IS NULL;

CREATE TABLE appliances (
    id              BIGSERIAL PRIMARY KEY,
    partner_id      BIGINT NOT NULL,
    site_id         BIGINT NOT NULL,
    -- The evidence signing key (C2SP verifier key text); its origin names the log.
    appliance_key   TEXT NOT NULL UNIQUE,
    -- SHA-256 of the client certificate's DER, as issued; mTLS peers are looked up by it.
    cert_sha256     BYTEA NOT NULL UNIQUE CHECK (length(cert_sha256) = 32),
    certificate     BYTEA NOT NULL,
    claimed_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_by      BIGINT REFERENCES users (id),
    last_seen       TIMESTAMPTZ,
    -- The next push sequence number this appliance must send (pushes arrive in order).
    next_seq        BIGINT NOT NULL DEFAULT 1,
    FOREIGN KEY (site_id, partner_id) REFERENCES sites (id, partner_id),
    UNIQUE (id, partner_id)
);
ALTER TABLE enrollments ADD FOREIGN KEY (appliance_id) REFERENCES appliances (id);

-- The witness: the newest checkpoint cosigned for each appliance.
CREATE TABLE witness_heads (
    appliance_id    BIGINT PRIMARY KEY REFERENCES appliances (id),
    size            BIGINT NOT NULL CHECK (size >= 0),
    root            BYTEA NOT NULL CHECK (length(root) = 32),
    note            TEXT NOT NULL,
    cosignature     TEXT NOT NULL,
    cosigned_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every cosignature given, for the record and for kits requested later.
CREATE TABLE cosignatures (
    id              BIGSERIAL PRIMARY KEY,
    appliance_id    BIGINT NOT NULL REFERENCES appliances (id),
    size            BIGINT NOT NULL,
    root            BYTEA NOT NULL,
    cosignature     TEXT NOT NULL,
    at              TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX cosignatures_appliance ON cosignatures (appliance_id, size);

-- A checkpoint that did not extend the head: kept as proof, never deleted.
CREATE TABLE witness_forks (
    id              BIGSERIAL PRIMARY KEY,
    appliance_id    BIGINT NOT NULL REFERENCES appliances (id),
    head_note       TEXT NOT NULL,
    offered_note    TEXT NOT NULL,
    proof           JSONB NOT NULL,
    reason          TEXT NOT NULL,
    at              TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TYPE alert_severity AS ENUM ('info', 'warning', 'critical');
CREATE TABLE alerts (
    id              BIGSERIAL PRIMARY KEY,
    partner_id      BIGINT NOT NULL REFERENCES partners (id),
    appliance_id    BIGINT REFERENCES appliances (id),
    severity        alert_severity NOT NULL,
    kind            TEXT NOT NULL,
    message         TEXT NOT NULL,
    at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    acknowledged_by BIGINT REFERENCES users (id),
    acknowledged_at TIMESTAMPTZ
);
CREATE INDEX alerts_open ON alerts (partner_id, at) WHERE acknowledged_at IS NULL;

CREATE TRIGGER witness_forks_append_only BEFORE UPDATE OR DELETE ON witness_forks
    FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change();
CREATE TRIGGER cosignatures_append_only BEFORE UPDATE OR DELETE ON cosignatures
    FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change();
