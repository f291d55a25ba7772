-- What partner users do about an incident (acknowledge, assign, comment), kept until the
-- incident's appliance has sealed each as an operator_action evidence bundle and said which one.
-- An appliance is handed and confirms only its own actions (every link query filters by the
-- appliance its client certificate names). Comments are kept verbatim: escaping is the page's job.
CREATE TABLE incident_actions (
    id              BIGSERIAL PRIMARY KEY,
    partner_id      BIGINT NOT NULL,
    appliance_id    BIGINT NOT NULL,
    incident_id     BIGINT NOT NULL,
    opened_at       TIMESTAMPTZ NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('acknowledge', 'assign', 'comment')),
    by_user         BIGINT NOT NULL REFERENCES users (id),
    -- For `assign`: the partner administrator or technician now in charge.
    assignee_user   BIGINT REFERENCES users (id),
    -- For `comment`: 1-2000 characters, trimmed, no control characters but line breaks.
    text            TEXT CHECK (text IS NULL OR (length(text) BETWEEN 1 AND 2000
                                                 AND text !~ '[\x01-\x09\x0b-\x1f\x7f\u0080-\u009f]')),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    -- First handed to the appliance.
    delivered_at    TIMESTAMPTZ,
    -- The appliance's report: the sequence number of the bundle that seals it, and its time.
    sealed_seq      BIGINT CHECK (sealed_seq >= 0),
    sealed_at       TIMESTAMPTZ,
    FOREIGN KEY (appliance_id, partner_id) REFERENCES appliances (id, partner_id),
    FOREIGN KEY (appliance_id, incident_id, opened_at) REFERENCES incidents (appliance_id, incident_id, opened_at),
    CHECK ((kind = 'assign') = (assignee_user IS NOT NULL)),
    CHECK ((kind = 'comment') = (text IS NOT NULL)),
    CHECK ((sealed_seq IS NULL) = (sealed_at IS NULL))
);
CREATE INDEX incident_actions_waiting ON incident_actions (appliance_id, id) WHERE sealed_seq IS NULL;
CREATE INDEX incident_actions_of_incident ON incident_actions (appliance_id, incident_id, opened_at, id);
