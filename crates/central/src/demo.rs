//! Realistic partner data for the pages' benchmark, tests and demo, written straight into the
//! tables the appliance link fills (the same shapes the link validates): practices, sites with
//! one appliance each, devices (mostly workstations, their five checks), incidents, healing,
//! 90 days of compliance, witness heads. Deterministic for given sizes.

use sqlx::PgPool;

/// How much to make.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Sites (one appliance each; five sites per practice).
    pub sites: i64,
    /// Devices per site (four in five are workstations).
    pub devices: i64,
}

/// What was made: the partner and its first site.
#[derive(Debug, Clone, Copy)]
pub struct Seeded {
    /// The partner.
    pub partner_id: i64,
    /// Its first site.
    pub first_site: i64,
    /// That site's appliance.
    pub first_appliance: i64,
}

/// Adds `sizes` of made-up data to partner `partner_id` (its existing sites, appliances and data
/// are left alone; practice names `Practice NNNN` must be free). Site
/// `i` is named `Site i`, its practice `Practice ⌊i/5⌋`; every 7th appliance is offline, every
/// 11th has escalated incidents, HIPAA compliance varies by site and drifts over the 90 days.
pub async fn seed(pool: &PgPool, partner_id: i64, sizes: Sizes) -> Result<Seeded, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Only what this call makes is touched: its sites come after every existing one.
    let floor: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM sites")
        .fetch_one(&mut *tx)
        .await?;
    let steps: [&str; 10] = [
        // Practices and sites.
        "INSERT INTO practices (partner_id, name)
         SELECT $1, 'Practice ' || lpad(p::text, 4, '0') FROM generate_series(0, ($2 - 1) / 5) p ORDER BY p",
        "INSERT INTO sites (partner_id, practice_id, name)
         SELECT $1, pr.id, 'Site ' || lpad(i::text, 5, '0')
         FROM generate_series(0, $2 - 1) i
         JOIN practices pr ON pr.partner_id = $1 AND pr.name = 'Practice ' || lpad((i / 5)::text, 4, '0')
         ORDER BY i",
        // One appliance per site; every 7th has not reported for two hours.
        "INSERT INTO appliances (partner_id, site_id, appliance_key, cert_sha256, certificate, last_seen, software_version, update_state, update_observed_at, ots_pending, ots_anchored)
         SELECT $1, s.id, 'demo+' || $1 || '+' || s.id || '+00000000000000000000000000000000000000000000',
                sha256(convert_to('demo-cert-' || $1 || '-' || s.id, 'UTF8')), '\\x00'::bytea,
                CASE WHEN s.id % 7 = 0 THEN now() - interval '2 hours' ELSE now() - interval '1 minute' END,
                '0.9.0', CASE WHEN s.id % 13 = 0 THEN 'rolled_back' ELSE 'idle' END, now(), 1, 40
         FROM sites s WHERE s.partner_id = $1 AND s.id > {floor} ORDER BY s.id",
        // Devices: four in five workstations; some drifted, some not reachable, some never scanned.
        "INSERT INTO devices (appliance_id, name, class, status, last_scan_at, checks_total, checks_failed, failing, observed_at, unchecked)
         SELECT a.id,
                CASE WHEN d % 5 = 4 THEN 'srv-' ELSE 'ws-' END || lpad(d::text, 4, '0') || '.site' || a.site_id || '.clinic.example',
                CASE WHEN d % 10 = 4 THEN 'windows_server' WHEN d % 5 = 4 THEN 'linux' ELSE 'workstation' END,
                CASE WHEN (d + a.id) % 31 = 0 THEN 'error' WHEN (d + a.id) % 37 = 0 THEN 'unknown'
                     WHEN (d + a.id) % 9 = 0 THEN 'drifted' ELSE 'compliant' END,
                CASE WHEN (d + a.id) % 31 = 0 OR (d + a.id) % 37 = 0 THEN NULL ELSE now() - interval '20 minutes' END,
                CASE WHEN (d + a.id) % 31 = 0 OR (d + a.id) % 37 = 0 THEN 0 ELSE 5 END,
                CASE WHEN (d + a.id) % 9 = 0 AND (d + a.id) % 31 <> 0 AND (d + a.id) % 37 <> 0 THEN 1 ELSE 0 END,
                CASE WHEN (d + a.id) % 9 = 0 AND (d + a.id) % 31 <> 0 AND (d + a.id) % 37 <> 0
                     THEN jsonb_build_array((ARRAY['WIN-WSBL-001','WIN-WSDEF-001','WIN-WSPATCH-001','WIN-WSFW-001','WIN-WSLOCK-001'])[1 + (d % 5)])
                     ELSE '[]'::jsonb END,
                now() - interval '5 minutes',
                CASE WHEN (d + a.id) % 31 = 0 THEN 'unreachable' WHEN (d + a.id) % 37 = 0 THEN 'not_scanned_yet' END
         FROM appliances a CROSS JOIN generate_series(0, $2 - 1) d
         WHERE a.partner_id = $1 AND a.site_id > {floor}",
        // The counts and compliance the overview reads, as the link keeps them.
        "UPDATE appliances a SET devices_total = c.total, devices_failing = c.failing,
                workstations_known = c.ws, workstations_checked = c.ws_checked,
                compliance_now = jsonb_build_object('HIPAA', 700 + (a.site_id * 37) % 300, 'SOC 2', 650 + (a.site_id * 53) % 350),
                devices_observed_at = now() - interval '5 minutes'
         FROM (SELECT appliance_id, count(*) AS total, count(*) FILTER (WHERE status <> 'compliant') AS failing,
                      count(*) FILTER (WHERE class = 'workstation') AS ws,
                      count(*) FILTER (WHERE class = 'workstation' AND status IN ('compliant', 'drifted')) AS ws_checked
               FROM devices GROUP BY appliance_id) c
         WHERE c.appliance_id = a.id AND a.partner_id = $1 AND a.site_id > {floor}",
        // Ninety days of compliance, drifting.
        "INSERT INTO compliance_daily (appliance_id, framework, day, permille)
         SELECT a.id, f, (now() AT TIME ZONE 'UTC')::date - g,
                least(1000, greatest(0, 700 + (a.site_id * 37) % 300 - (g * ((a.site_id % 5) - 2)) / 3))
         FROM appliances a CROSS JOIN generate_series(0, 89) g CROSS JOIN unnest(ARRAY['HIPAA', 'SOC 2']) f
         WHERE a.partner_id = $1 AND a.site_id > {floor}",
        "INSERT INTO compliance_daily_partner (partner_id, framework, day, total, reports)
         SELECT a.partner_id, c.framework, c.day, sum(c.permille), count(c.permille)
         FROM compliance_daily c JOIN appliances a ON a.id = c.appliance_id
         WHERE a.partner_id = $1 AND a.site_id > {floor} GROUP BY a.partner_id, c.framework, c.day
         ON CONFLICT (partner_id, framework, day) DO UPDATE
             SET total = compliance_daily_partner.total + EXCLUDED.total,
                 reports = compliance_daily_partner.reports + EXCLUDED.reports",
        // Incidents: every drifted device has one; every 11th site escalated ones.
        "INSERT INTO incidents (appliance_id, incident_id, opened_at, device, check_id, severity, phase, updated_at, occurrences, flapping, acknowledged, transitions)
         SELECT d.appliance_id, row_number() OVER (PARTITION BY d.appliance_id ORDER BY d.name), date_trunc('second', now() - interval '3 hours'), d.name,
                d.failing ->> 0, 'high',
                CASE WHEN a.site_id % 11 = 0 THEN 'escalated' ELSE 'open' END, now() - interval '30 minutes', 3, false, false,
                '[]'::jsonb
         FROM devices d JOIN appliances a ON a.id = d.appliance_id
         WHERE a.partner_id = $1 AND a.site_id > {floor} AND d.status = 'drifted'",
        // Healing: each drifted device was tried by L1 (fixed once, then not), escalations by L3.
        "INSERT INTO healing_log (appliance_id, entry_id, at, device, check_id, tier, rule, result, evidence_seq)
         SELECT i.appliance_id, i.incident_id * 2 + k, now() - make_interval(mins => 90 - k * 30), i.device, i.check_id,
                CASE WHEN k = 1 AND i.phase = 'escalated' THEN 'L3' ELSE 'L1' END,
                CASE WHEN k = 1 AND i.phase = 'escalated' THEN NULL ELSE 'L1-' || i.check_id END,
                CASE WHEN k = 0 THEN 'fixed' WHEN i.phase = 'escalated' THEN 'escalated' ELSE 'not_fixed' END,
                1000 + i.incident_id * 2 + k
         FROM incidents i JOIN appliances a ON a.id = i.appliance_id CROSS JOIN generate_series(0, 1) k
         WHERE a.partner_id = $1 AND a.site_id > {floor}",
        // The witness has cosigned each appliance's log.
        "INSERT INTO witness_heads (appliance_id, size, root, note, cosignature, cosigned_at)
         SELECT a.id, 5000 + a.site_id, sha256(convert_to('root' || a.id, 'UTF8')), 'demo', 'demo', now() - interval '4 minutes'
         FROM appliances a WHERE a.partner_id = $1 AND a.site_id > {floor}",
    ];
    for step in steps {
        // `floor` is a number read above, never text from outside.
        let step = step.replace("{floor}", &floor.to_string());
        let mut query = sqlx::query(sqlx::AssertSqlSafe(step.clone())).bind(partner_id);
        if step.contains("$2") {
            query = query.bind(if step.contains("generate_series(0, $2 - 1) d") {
                sizes.devices
            } else {
                sizes.sites
            });
        }
        query.execute(&mut *tx).await?;
    }
    let (first_site, first_appliance): (i64, i64) = sqlx::query_as(
        "SELECT s.id, a.id FROM sites s JOIN appliances a ON a.site_id = s.id WHERE s.partner_id = $1 AND s.id > $2 ORDER BY s.id LIMIT 1",
    )
    .bind(partner_id)
    .bind(floor)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Seeded {
        partner_id,
        first_site,
        first_appliance,
    })
}
