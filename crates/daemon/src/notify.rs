//! L3: turning escalated incidents into notifications on the configured channels, with
//! de-duplication and reminders (escalate's policy), and recording each one as evidence.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use escalate::{Channel, ChannelKind, EmailSecurity, Notification, NotifyDecision, NotifyPolicy};
use evidence_schema::{DeliveryAttempt, DeliveryRecord, NotificationBody};

use crate::{Shared, now, state::Sent};

/// How often reminders are considered even when nothing new was escalated.
const REMINDER_TICK: Duration = Duration::from_secs(30);

/// The configured channels with their secrets read from 0600 files, and the policy.
pub(crate) fn channels(
    cfg: &config::EscalationConfig,
) -> anyhow::Result<(Vec<Channel>, NotifyPolicy)> {
    let mut channels = Vec::new();
    let mut problems = Vec::new();
    for ch in &cfg.channels {
        let secret = |path: &std::path::Path| -> anyhow::Result<String> {
            let text = ops::secrets::read_password_file(path).map_err(|err| {
                ops::BadConfig(format!("escalation channel `{}`: {err:#}", ch.name))
            })?;
            Ok(text.trim().to_owned())
        };
        let kind = match &ch.kind {
            config::ChannelKind::Email(email) => ChannelKind::Email {
                server: email.server.clone(),
                port: email.port,
                security: match email.security {
                    config::EmailSecurity::StartTls => EmailSecurity::StartTls,
                    config::EmailSecurity::Tls => EmailSecurity::Tls,
                    config::EmailSecurity::None => EmailSecurity::None,
                },
                from: email.from.clone(),
                to: email.to.clone(),
                username: email.login.as_ref().map(|login| login.username.clone()),
                password: match &email.login {
                    Some(login) => Some(secret(&login.password_file)?),
                    None => None,
                },
                ca_pem: match &email.ca_file {
                    Some(path) => Some(std::fs::read(path).map_err(|err| {
                        ops::BadConfig(format!(
                            "escalation channel `{}`: cannot read CA file {}: {err}",
                            ch.name,
                            path.display()
                        ))
                    })?),
                    None => None,
                },
            },
            config::ChannelKind::Slack { url_file } => ChannelKind::Slack {
                url: secret(url_file)?,
            },
            config::ChannelKind::Teams { url_file } => ChannelKind::Teams {
                url: secret(url_file)?,
            },
            config::ChannelKind::PagerDuty {
                routing_key_file,
                events_url,
            } => ChannelKind::PagerDuty {
                routing_key: secret(routing_key_file)?,
                events_url: events_url
                    .clone()
                    .unwrap_or_else(|| escalate::channel::PAGERDUTY_EVENTS_URL.to_owned()),
            },
            config::ChannelKind::Webhook { url, secret_file } => ChannelKind::Webhook {
                url: url.clone(),
                secret: secret(secret_file)?.into_bytes(),
            },
        };
        let channel = Channel {
            name: ch.name.clone(),
            min_severity: ch.min_severity,
            kind,
        };
        problems.extend(channel.problems());
        channels.push(channel);
    }
    if !problems.is_empty() {
        return Err(ops::BadConfig(problems.join("\n")).into());
    }
    let minutes = |m: Option<u32>| m.map(|m| i64::from(m) * 60);
    let remind = &cfg.remind_after_minutes;
    let policy = NotifyPolicy {
        remind_after_secs: [
            minutes(remind.low),
            minutes(remind.medium),
            minutes(remind.high),
            minutes(remind.critical),
        ],
        max_reminders: cfg.max_reminders,
        max_attempts: cfg.max_attempts,
        first_backoff: Duration::from_secs(cfg.first_backoff_secs),
        max_backoff: Duration::from_secs(cfg.max_backoff_secs),
    };
    Ok((channels, policy))
}

/// Sends what is due whenever an incident is escalated, and reminders on a timer, until shutdown.
pub(crate) async fn notifier_loop(shared: Arc<Shared>) {
    // Without configured channels the partner's may still arrive over the link: keep watching.
    let mut shutdown = shared.shutdown.clone();
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(err) = notify_due(&shared).await {
            tracing::error!(error = %format!("{err:#}"), "Escalation round failed; will retry.");
        }
        if let Err(err) = notify_expired(&shared).await {
            tracing::error!(error = %format!("{err:#}"), "Expiry notices failed; will retry.");
        }
        tokio::select! {
            _ = shared.notifier.notified() => {}
            _ = tokio::time::sleep(REMINDER_TICK) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One round: every escalated, unacknowledged incident whose policy says send or remind.
async fn notify_due(shared: &Arc<Shared>) -> anyhow::Result<()> {
    let due: Vec<(Notification, u64)> = {
        let state = shared.state();
        let now = now();
        state
            .ledger
            .open()
            .into_iter()
            .filter(|i| i.phase == incidents::Phase::Escalated)
            .filter_map(|incident| {
                let key = Notification::key_for(
                    &shared.settings.config.site,
                    &incident.target,
                    &incident.check,
                );
                let sent = state.saved.sent.get(&key);
                let reminder = due(&shared.settings.notify_policy, incident, sent, now)?;
                Some((notification(shared, incident, key, reminder), incident.id))
            })
            .collect()
    };
    for (n, incident) in due {
        if *shared.shutdown.borrow() {
            break;
        }
        let deliveries = futures_join(shared, &n).await;
        if deliveries.is_empty() {
            // No channel takes this severity: nothing to send, nothing to record.
            continue;
        }
        let delivered = deliveries.iter().any(|d| d.delivered);
        record(shared, &n, incident, &deliveries).await?;
        {
            let mut state = shared.state();
            let previous = state
                .saved
                .sent
                .get(&n.key)
                .copied()
                .filter(|s| s.incident == incident);
            let entry = after_attempt(previous, incident, n.reminder, delivered, now());
            state.saved.sent.insert(n.key.clone(), entry);
        }
        shared.save().await;
    }
    Ok(())
}

/// The key of the one notice about an expired attestation or exception (bundle `seq`); notices
/// already sealed are found in the log at start (`expiry_keys`), so a restart sends none again.
pub(crate) fn expiry_key(site: &str, kind: &str, seq: u64) -> String {
    format!("{site}/expired/{kind}/{seq}")
}

/// The expiry notices already sealed in the log.
pub(crate) async fn expiry_keys(
    store: &store::Store,
) -> anyhow::Result<std::collections::BTreeSet<String>> {
    use futures_util::TryStreamExt as _;
    let mut keys = std::collections::BTreeSet::new();
    let kinds = [evidence_schema::KIND_NOTIFICATION];
    let mut lines = std::pin::pin!(store.lines_of_kinds(0..store.size(), &kinds));
    while let Some((_, line)) = lines.try_next().await.context("reading notifications")? {
        let bundle: serde_json::Value =
            serde_json::from_slice(&line).context("reading a notification")?;
        if let Some(key) = bundle["body"]["key"].as_str()
            && key.contains("/expired/")
        {
            keys.insert(key.to_owned());
        }
    }
    Ok(keys)
}

/// Tells the people on the L3 channels, once, that an accepted risk or an attestation expired:
/// from the day after its last day the finding counts again or the control needs a new
/// attestation. Sealed as a `notification` bundle like any other; retried while no channel took
/// it.
async fn notify_expired(shared: &Arc<Shared>) -> anyhow::Result<()> {
    let today = time::OffsetDateTime::now_utc().date();
    let site = &shared.settings.config.site;
    let accepted = shared.accepted();
    let mut due = Vec::new();
    for exception in accepted.exceptions.iter().filter(|e| e.expires < today) {
        let key = expiry_key(site, evidence_schema::KIND_EXCEPTION, exception.seq);
        due.push(Notification {
            key,
            site: site.clone(),
            target: exception.target.clone(),
            check: exception.check.clone(),
            severity: model::Severity::Medium,
            title: format!(
                "The accepted risk for {} on {} expired",
                exception.check, exception.target
            ),
            detail: format!(
                "The exception (bundle {seq}) for {check} on {target} ended on {expires}; from now on the finding counts again in the compliance figures and reports.\nReason given: {reason}\nCompensating control: {compensating}\nOwner: {owner}\nWhat to do: fix {check} on {target}, or record a new exception with `osiris exception add` if the risk is still accepted.",
                seq = exception.seq,
                check = exception.check,
                target = exception.target,
                expires = exception.expires,
                reason = exception.reason,
                compensating = exception.compensating,
                owner = exception.owner,
            ),
            opened_at: exception.at.unix_timestamp(),
            reminder: false,
        });
    }
    for attestation in accepted.attestations.iter().filter(|a| a.expires < today) {
        let key = expiry_key(site, evidence_schema::KIND_ATTESTATION, attestation.seq);
        due.push(Notification {
            key,
            site: site.clone(),
            target: site.clone(),
            check: format!("{}:{}", attestation.framework.label(), attestation.control),
            severity: model::Severity::Medium,
            title: format!(
                "The attestation of {} {} expired",
                attestation.framework.label(),
                attestation.control
            ),
            detail: format!(
                "The attestation (bundle {seq}) of {framework} {control} by {by} ended on {expires}; the control needs a new one.\nWhat to do: review it and record a new attestation with `osiris attest`.",
                seq = attestation.seq,
                framework = attestation.framework.label(),
                control = attestation.control,
                by = attestation.by,
                expires = attestation.expires,
            ),
            opened_at: attestation.at.unix_timestamp(),
            reminder: false,
        });
    }
    for n in due {
        let sent = shared
            .expiry_notices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&n.key);
        if sent || *shared.shutdown.borrow() {
            continue;
        }
        let deliveries = futures_join(shared, &n).await;
        if !deliveries.iter().any(|d| d.delivered) {
            // No channel took it (or none is configured yet): ask again next round.
            continue;
        }
        record(shared, &n, 0, &deliveries).await?;
        tracing::info!(key = %n.key, "An expiry notice was sent.");
        shared
            .expiry_notices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(n.key);
    }
    Ok(())
}

/// Whether an escalated incident is due a notification now: `Some(false)` for the first one
/// (or a retry of a first one nobody received), `Some(true)` for a reminder, `None` for nothing.
pub(crate) fn due(
    policy: &NotifyPolicy,
    incident: &incidents::Incident,
    sent: Option<&Sent>,
    now: i64,
) -> Option<bool> {
    let sent = sent.filter(|s| s.incident == incident.id);
    if let Some(s) = sent
        && !s.delivered
    {
        // Every channel failed last time: try again once the back-off has passed.
        return (!incident.acknowledged && now >= s.retry_at).then_some(s.reminders > 0);
    }
    let state = sent.map(|s| escalate::SentState {
        last_sent: s.last_sent,
        reminders: s.reminders,
        acknowledged: incident.acknowledged,
    });
    match policy.decide(incident.severity, state.as_ref(), now) {
        NotifyDecision::Send => Some(false),
        NotifyDecision::Remind => Some(true),
        NotifyDecision::Suppress => None,
    }
}

/// The notification state after an attempt: delivered to at least one channel, or not (then
/// retried after a back-off that doubles from 5 minutes up to 1 hour).
pub(crate) fn after_attempt(
    previous: Option<Sent>,
    incident: u64,
    reminder: bool,
    delivered: bool,
    now: i64,
) -> Sent {
    let mut entry = previous.unwrap_or(Sent {
        incident,
        last_sent: 0,
        reminders: 0,
        delivered: true,
        failures: 0,
        retry_at: 0,
    });
    if delivered {
        entry.last_sent = now;
        if reminder {
            entry.reminders += 1;
        }
        entry.delivered = true;
        entry.failures = 0;
        entry.retry_at = 0;
    } else {
        entry.delivered = false;
        entry.failures += 1;
        let backoff = (300_i64 << (entry.failures - 1).min(4)).min(3600);
        entry.retry_at = now + backoff;
    }
    entry
}

/// Delivers to every channel at once (each retries on its own schedule).
async fn futures_join(shared: &Arc<Shared>, n: &Notification) -> Vec<escalate::Delivery> {
    let mut set = tokio::task::JoinSet::new();
    for channel in shared.all_channels() {
        let n = n.clone();
        let policy = shared.settings.notify_policy.clone();
        set.spawn(async move { escalate::deliver(&channel, &n, &policy).await });
    }
    let mut deliveries = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(Some(delivery)) = joined {
            deliveries.push(delivery);
        }
    }
    deliveries.sort_by(|a, b| a.channel.cmp(&b.channel));
    deliveries
}

fn notification(
    shared: &Shared,
    incident: &incidents::Incident,
    key: String,
    reminder: bool,
) -> Notification {
    let runbook = shared.settings.catalog.get(&incident.check);
    let title = runbook.map_or_else(
        || incident.check.clone(),
        |rb| format!("{} on {}", rb.title, incident.target),
    );
    let why = incident
        .transitions
        .iter()
        .rev()
        .find(|t| t.to == incidents::Phase::Escalated)
        .map(|t| t.why.clone())
        .unwrap_or_default();
    let detail = format!(
        "Check {check} fails on {target} (seen {n} times since {since}).\nWhat the appliance did: {why}.\nWhat to do: fix it on {target}, or acknowledge it in the console to stop reminders.",
        check = incident.check,
        target = incident.target,
        n = incident.occurrences,
        since = evidence::log::format_time(
            time::OffsetDateTime::from_unix_timestamp(incident.opened_at)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        )
        .unwrap_or_default(),
    );
    Notification {
        key,
        site: shared.settings.config.site.clone(),
        target: incident.target.clone(),
        check: incident.check.clone(),
        severity: incident.severity,
        title,
        detail,
        opened_at: incident.opened_at,
        reminder,
    }
}

async fn record(
    shared: &Shared,
    n: &Notification,
    incident: u64,
    deliveries: &[escalate::Delivery],
) -> anyhow::Result<()> {
    let body = NotificationBody {
        incident,
        key: n.key.clone(),
        target: n.target.clone(),
        check: n.check.clone(),
        severity: n.severity.as_str().to_owned(),
        headline: n.headline(),
        reminder: n.reminder,
        deliveries: deliveries
            .iter()
            .map(|d| DeliveryRecord {
                channel: d.channel.clone(),
                kind: d.kind.to_owned(),
                delivered: d.delivered,
                attempts: d
                    .attempts
                    .iter()
                    .map(|a| DeliveryAttempt {
                        at: evidence::log::format_time(
                            time::OffsetDateTime::UNIX_EPOCH
                                + Duration::from_millis(a.at_ms as u64),
                        )
                        .unwrap_or_default(),
                        answer: a.outcome.as_ref().ok().cloned(),
                        error: a.outcome.as_ref().err().cloned(),
                    })
                    .collect(),
            })
            .collect(),
    };
    shared
        .store
        .append(evidence::BundleDraft {
            site: shared.settings.config.site.clone(),
            kind: evidence_schema::KIND_NOTIFICATION.to_owned(),
            catalog: shared.settings.catalog.version().to_owned(),
            time: time::OffsetDateTime::now_utc(),
            body: serde_json::to_value(&body)?,
        })
        .await
        .context("recording the notification as evidence")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use model::Severity;

    use super::*;

    fn incident(acknowledged: bool) -> incidents::Incident {
        incidents::Incident {
            id: 7,
            target: "h1".into(),
            check: "LIN-SSH-002".into(),
            severity: Severity::High,
            phase: incidents::Phase::Escalated,
            opened_at: 0,
            updated_at: 0,
            occurrences: 1,
            flapping: false,
            acknowledged,
            transitions: Vec::new(),
        }
    }

    #[test]
    fn a_notification_nobody_received_is_retried_with_back_off_and_then_reminded_normally() {
        let policy = NotifyPolicy::default();
        let open = incident(false);
        // Never sent: send.
        assert_eq!(due(&policy, &open, None, 0), Some(false));
        // Every channel failed at t=0: nothing for 5 minutes, then a retry of the first mail.
        let failed = after_attempt(None, 7, false, false, 0);
        assert_eq!((failed.delivered, failed.retry_at), (false, 300));
        assert_eq!(due(&policy, &open, Some(&failed), 299), None);
        assert_eq!(due(&policy, &open, Some(&failed), 300), Some(false));
        // Failing again doubles the wait, up to an hour.
        let twice = after_attempt(Some(failed), 7, false, false, 300);
        assert_eq!(twice.retry_at, 300 + 600);
        let mut many = twice;
        for _ in 0..10 {
            many = after_attempt(Some(many), 7, false, false, 1000);
        }
        assert_eq!(many.retry_at, 1000 + 3600);
        // Delivered: quiet until the high-severity reminder (4 h).
        let sent = after_attempt(Some(many), 7, false, true, 2000);
        assert!(sent.delivered);
        assert_eq!(due(&policy, &open, Some(&sent), 2000 + 3600), None);
        assert_eq!(
            due(&policy, &open, Some(&sent), 2000 + 4 * 3600),
            Some(true)
        );
        // Acknowledged: never again, retries included.
        assert_eq!(
            due(&policy, &incident(true), Some(&sent), 2000 + 10 * 3600),
            None
        );
        assert_eq!(due(&policy, &incident(true), Some(&failed), 10_000), None);
        // A new incident for the same key starts afresh.
        let mut other = open.clone();
        other.id = 8;
        assert_eq!(due(&policy, &other, Some(&sent), 2001), Some(false));
    }
}
