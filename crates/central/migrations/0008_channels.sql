-- Escalation channels a partner sets once for all its appliances. Each secret is kept sealed
-- (HPKE) to Central Command's at-rest key and re-sealed to each appliance's own key when it
-- asks: the database never holds a secret in the clear.
CREATE TABLE partner_channels (
    partner_id      BIGINT NOT NULL REFERENCES partners (id),
    name            TEXT NOT NULL CHECK (name ~ '^[a-z0-9_-]{1,48}$'),
    kind            TEXT NOT NULL CHECK (kind IN ('slack', 'teams', 'pagerduty', 'webhook')),
    min_severity    TEXT NOT NULL CHECK (min_severity IN ('low', 'medium', 'high', 'critical')),
    url             TEXT CHECK (url IS NULL OR url ~ '^https://'),
    secret_sealed   JSONB NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by      TEXT NOT NULL,
    PRIMARY KEY (partner_id, name),
    CHECK ((kind = 'webhook') = (url IS NOT NULL))
);

-- The key each appliance last asked its channel secrets to be sealed to.
ALTER TABLE appliances ADD COLUMN sealing_key TEXT;
