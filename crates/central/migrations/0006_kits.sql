-- Evidence kits on demand: a partner or auditor asks an appliance for a kit; the appliance
-- uploads it over the link; Central Command verifies it (the appliance's key pinned, the
-- witness's cosignature required once the appliance has one) and keeps it for download only
-- when it verified.
CREATE TABLE kit_requests (
    id              BIGSERIAL PRIMARY KEY,
    partner_id      BIGINT NOT NULL,
    appliance_id    BIGINT NOT NULL,
    requested_by    BIGINT NOT NULL REFERENCES users (id),
    requested_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The period the requester cares about (the kit always holds the whole log, a superset).
    period_from     DATE,
    period_to       DATE,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'verified', 'refused')),
    finished_at     TIMESTAMPTZ,
    bundles         BIGINT,
    witnessed_size  BIGINT,
    problems        JSONB NOT NULL DEFAULT '[]'::jsonb,
    size_bytes      BIGINT,
    sha256          BYTEA CHECK (length(sha256) = 32),
    kit             BYTEA,
    FOREIGN KEY (appliance_id, partner_id) REFERENCES appliances (id, partner_id),
    CHECK (period_from IS NULL OR period_to IS NULL OR period_from <= period_to),
    CHECK ((status = 'verified') = (kit IS NOT NULL))
);
CREATE INDEX kit_requests_pending ON kit_requests (appliance_id) WHERE status = 'pending';
CREATE INDEX kit_requests_by_partner ON kit_requests (partner_id, requested_at DESC);
