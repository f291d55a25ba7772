-- Endpoint-agent releases this Central Command relays to its appliances: the vendor's signed
-- per-platform document verbatim and the binary it names (appliances verify both against the
-- agent root they are configured with, so Central Command cannot forge one), and each partner's
-- staged rollout of them.
CREATE TABLE agent_releases (
    id              BIGSERIAL PRIMARY KEY,
    platform        TEXT NOT NULL CHECK (platform ~ '^[a-z0-9_-]{1,32}$'),
    version         TEXT NOT NULL CHECK (version ~ '^[0-9]+\.[0-9]+\.[0-9]+$'),
    manifest        BYTEA NOT NULL,
    file_name       TEXT NOT NULL,
    body            BYTEA NOT NULL,
    sha256          BYTEA NOT NULL CHECK (length(sha256) = 32),
    size            BIGINT NOT NULL CHECK (size = length(body)),
    added_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    added_by        TEXT NOT NULL,
    UNIQUE (platform, version)
);

-- As image rollouts: a share of the partner's appliances (a fixed bucket 0-99 per release, so
-- raising the share only adds appliances) and named practices first, whatever the share.
CREATE TABLE agent_rollouts (
    partner_id        BIGINT NOT NULL REFERENCES partners (id),
    agent_release_id  BIGINT NOT NULL REFERENCES agent_releases (id),
    percent           INTEGER NOT NULL CHECK (percent BETWEEN 0 AND 100),
    practices         BIGINT[] NOT NULL DEFAULT '{}',
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by        TEXT NOT NULL,
    PRIMARY KEY (partner_id, agent_release_id)
);
