-- Remote L2 (docs/L2.md, "Remote L2"): the keys appliances present, each partner's daily
-- budget when it differs from the configured default, and what each partner spent per UTC day.

-- An appliance's L2 key, stored only as its SHA-256; shown once when made.
CREATE TABLE l2_keys (
    id              BIGSERIAL PRIMARY KEY,
    appliance_id    BIGINT NOT NULL REFERENCES appliances (id),
    key_sha256      BYTEA NOT NULL UNIQUE CHECK (length(key_sha256) = 32),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at      TIMESTAMPTZ
);
CREATE INDEX l2_keys_appliance ON l2_keys (appliance_id);

CREATE TABLE l2_budgets (
    partner_id      BIGINT PRIMARY KEY REFERENCES partners (id),
    daily_tokens    BIGINT NOT NULL CHECK (daily_tokens >= 0),
    daily_micro_usd BIGINT NOT NULL CHECK (daily_micro_usd >= 0)
);

-- Reserved before a call (its worst case), corrected to what the provider reported after it.
CREATE TABLE l2_usage (
    partner_id      BIGINT NOT NULL REFERENCES partners (id),
    day             DATE NOT NULL,
    tokens          BIGINT NOT NULL DEFAULT 0 CHECK (tokens >= 0),
    -- Trillionths of a dollar (a token times a price in micro-dollars per million tokens).
    pico_usd        BIGINT NOT NULL DEFAULT 0 CHECK (pico_usd >= 0),
    requests        BIGINT NOT NULL DEFAULT 0,
    refused         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (partner_id, day)
);
