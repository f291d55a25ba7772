-- Image releases this Central Command relays to its appliances (the vendor's signed manifests,
-- verbatim: appliances verify them against the vendor key they pin, so Central Command cannot
-- forge one) and each partner's staged rollout of them.
CREATE TABLE releases (
    id              BIGSERIAL PRIMARY KEY,
    version         TEXT NOT NULL UNIQUE CHECK (version ~ '^[0-9]+\.[0-9]+\.[0-9]+$'),
    manifest        BYTEA NOT NULL,
    counter         BIGINT NOT NULL CHECK (counter >= 1),
    expires_at      TIMESTAMPTZ NOT NULL,
    added_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    added_by        TEXT NOT NULL
);

-- A partner offers a release to a share of its appliances (each appliance falls in a fixed
-- bucket 0-99 per release, so raising the share only adds appliances) and to named practices
-- first, whatever the share.
CREATE TABLE rollouts (
    partner_id      BIGINT NOT NULL REFERENCES partners (id),
    release_id      BIGINT NOT NULL REFERENCES releases (id),
    percent         INTEGER NOT NULL CHECK (percent BETWEEN 0 AND 100),
    practices       BIGINT[] NOT NULL DEFAULT '{}',
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by      TEXT NOT NULL,
    PRIMARY KEY (partner_id, release_id)
);
