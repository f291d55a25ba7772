-- Partner channels may send e-mail (authenticated SMTP over STARTTLS or TLS); the password is
-- the channel's sealed secret, the rest of the settings travel in the clear.
ALTER TABLE partner_channels ADD COLUMN email JSONB;
ALTER TABLE partner_channels DROP CONSTRAINT partner_channels_kind_check;
ALTER TABLE partner_channels ADD CONSTRAINT partner_channels_kind_check
    CHECK (kind IN ('slack', 'teams', 'pagerduty', 'webhook', 'email'));
ALTER TABLE partner_channels ADD CONSTRAINT partner_channels_email_settings
    CHECK ((kind = 'email') = (email IS NOT NULL));
