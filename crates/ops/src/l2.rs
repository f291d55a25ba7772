//! L2 healing of what L1 leaves: a failed check with no L1 rule, or whose rule escalates for a
//! person's judgement, goes (scrubbed) to the configured model; the answer passes the `l2`
//! guardrails; an accepted plan runs through the same remediate → verify → rollback path as L1
//! (`heal::execute_plan`); every consultation is sealed as an `l2` bundle. Pause, maintenance
//! and dry-run are the caller's (`heal::heal_scanned`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use time::OffsetDateTime;

use config::{L2Config, L2Key, L2Provider, PasswordSource, TransportConfig};
use evidence_schema::{CheckState, L2Body, TargetRecord};
use heal::{HealRecord, HealResult, PlanRun};
use l2::{Guard, GuardSettings, Provider, Rejection, Verdict};
use model::{ParamValue, Target};
use rules::{Action, Decision, RuleSet};

use crate::BadConfig;

/// Most bytes of a provider's answer kept in evidence.
const REPLY_EXCERPT: usize = 64 * 1024;

/// The configured planner: the provider client and the site's guard (budget, rate limit,
/// breaker), whose spending survives restarts in `<data_dir>/l2-spend.json`.
pub struct Planner {
    cfg: L2Config,
    client: l2::ProviderClient,
    guard: Mutex<Guard>,
    spend_path: PathBuf,
    data_dir: PathBuf,
}

/// What a consultation turned an L1 outcome into, and the `l2` bundle that records it.
#[derive(Debug, Clone)]
pub struct Consulted {
    pub record: HealRecord,
    pub l2_seq: u64,
}

impl Planner {
    /// The planner `[l2]` asks for, `None` when L2 is off; the API key is read now (vault entry
    /// or 0600 file) and kept only in the client.
    ///
    /// # Errors
    /// [`BadConfig`] when the key cannot be read or the endpoint is unusable.
    pub fn from_config(
        config: &config::Config,
        data_dir: &Path,
    ) -> anyhow::Result<Option<Planner>> {
        let Some(cfg) = config.l2.clone() else {
            return Ok(None);
        };
        let secrets = crate::secrets::Secrets::new(config, data_dir);
        let api_key = match &cfg.key {
            L2Key::None => None,
            L2Key::Vault(name) => Some(
                secrets
                    .password("l2.credential", &PasswordSource::Credential(name.clone()))?
                    .to_string(),
            ),
            L2Key::File(path) => Some(
                secrets
                    .password("l2.api_key_file", &PasswordSource::File(path.clone()))?
                    .to_string(),
            ),
        };
        let client = l2::ProviderClient::new(l2::ClientSettings {
            provider: provider(cfg.provider),
            endpoint: cfg.endpoint.clone(),
            api_key,
            timeout: Duration::from_secs(cfg.timeout_secs),
            max_retries: 2,
            max_retry_wait: Duration::from_secs(30),
            remote: cfg.mode == config::L2Mode::Remote,
        })
        .map_err(|err| BadConfig(err.to_string()))?;
        let mut guard = Guard::new(GuardSettings {
            confidence_floor: cfg.confidence_floor,
            approval_required: cfg.approval_required.clone(),
            dry_run: cfg.dry_run,
            budget: l2::Budget {
                daily_tokens: cfg.daily_token_budget,
                daily_micro_usd: cfg.daily_budget_micro_usd,
            },
            price: l2::Price {
                input_micro_usd_per_mtok: cfg.price.input_micro_usd_per_mtok,
                output_micro_usd_per_mtok: cfg.price.output_micro_usd_per_mtok,
            },
            max_per_hour: cfg.max_per_hour,
            breaker_failures: cfg.breaker_failures,
            breaker_cooldown_secs: i64::from(cfg.breaker_cooldown_minutes) * 60,
        });
        let spend_path = data_dir.join("l2-spend.json");
        if let Ok(text) = std::fs::read_to_string(&spend_path) {
            let saved: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("reading {}", spend_path.display()))?;
            let day = saved["day"].as_i64().unwrap_or(i64::MIN);
            let tokens = saved["tokens"].as_u64().unwrap_or(0);
            let pico: u128 = saved["pico_usd"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            guard.restore_spending(
                day,
                tokens,
                pico,
                OffsetDateTime::now_utc().unix_timestamp(),
            );
        }
        Ok(Some(Planner {
            cfg,
            client,
            guard: Mutex::new(guard),
            spend_path,
            data_dir: data_dir.to_path_buf(),
        }))
    }

    pub fn settings(&self) -> &L2Config {
        &self.cfg
    }

    /// Tokens and trillionths of a dollar spent today.
    pub fn spent(&self, now: i64) -> (u64, u128) {
        self.lock().spent(now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Guard> {
        // A panic while holding the guard cannot leave it half-updated in a way that matters
        // more than stopping L2: keep going with what it holds.
        self.guard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn save_spending(&self) {
        let (day, tokens, pico) = self.lock().spending();
        let text = serde_json::json!({"day": day, "tokens": tokens, "pico_usd": pico.to_string()})
            .to_string();
        if let Err(err) = durable::write(&self.spend_path, text.as_bytes(), 0o600) {
            tracing::error!(error = %err, "L2 spending could not be saved; the budget restarts from zero after a restart.");
        }
    }
}

/// Whether L2 may take this L1 outcome: no rule covers the finding, or its rule always
/// escalates (the fix needs judgement). Escalations of remediate rules (a declarative target, a
/// flapping fix, a runbook that needs approval) stay with L1.
pub fn is_candidate(record: &HealRecord, rules: &RuleSet) -> bool {
    match &record.decision {
        Decision::NoRule => true,
        Decision::Escalate { rule: Some(id), .. } => rules
            .rules()
            .iter()
            .any(|rule| &rule.id == id && rule.action == Action::Escalate),
        _ => false,
    }
}

/// Consults the planner about one L1 outcome on `target`, runs an accepted plan and seals the
/// consultation. The returned record replaces L1's (the caller seals it as a `heal` or
/// `escalation` bundle like any other).
///
/// # Errors
/// When the store cannot be read or written.
#[allow(
    clippy::too_many_arguments,
    reason = "one consultation needs all of it"
)]
pub async fn consult(
    planner: &Planner,
    store: &store::Store,
    config: &config::Config,
    catalog: &catalog::Catalog,
    target: &Target,
    transport: &Arc<dyn transport::Transport>,
    l1: &HealRecord,
    now: i64,
) -> anyhow::Result<Consulted> {
    let check = catalog
        .get(&l1.check)
        .with_context(|| format!("check {} is not in the catalogue", l1.check))?;
    let overrides = config.param_overrides();
    let empty = BTreeMap::new();
    let params: Vec<(String, ParamValue)> =
        model::resolve_params(&check.params, overrides.get(&check.id).unwrap_or(&empty))
            .map(|p| p.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect())
            .unwrap_or_default();
    let history: Vec<l2::HistoryEntry> = store
        .heal_attempts_since(now - 7 * 86_400)
        .await
        .context("reading the healing history")?
        .into_iter()
        .filter(|a| a.target == target.name && a.check == check.id)
        .map(|a| l2::HistoryEntry {
            age_secs: now - a.at,
            what: format!(
                "{} {}",
                a.rule,
                if a.verified {
                    "fixed it"
                } else {
                    "did not fix it"
                }
            ),
        })
        .collect();
    let l1_words = match &l1.decision {
        Decision::Escalate {
            rule: Some(rule),
            reason,
        } => format!("L1 rule {rule} escalates: {reason}"),
        _ => "no L1 rule covers this finding".to_owned(),
    };
    let facts = vec![
        ("platform".to_owned(), target.platform.as_str().to_owned()),
        (
            "device_type".to_owned(),
            target.device_type.as_str().to_owned(),
        ),
    ];
    let mut known_hosts: Vec<String> = vec![target.name.clone()];
    for t in &config.targets {
        known_hosts.push(t.name.clone());
        match &t.transport {
            TransportConfig::Ssh(ssh) => known_hosts.push(ssh.address.clone()),
            TransportConfig::WinRm(winrm) => known_hosts.push(winrm.address.clone()),
            TransportConfig::Local => {}
        }
    }
    known_hosts.retain(|h| h != "localhost");
    let known: Vec<&str> = known_hosts.iter().map(String::as_str).collect();
    let incident = l2::Incident {
        host: &target.name,
        platform: target.platform,
        check,
        params: &params,
        observed: &l1.before.observed,
        reason: &l1.before.reason,
        host_facts: &facts,
        history: &history,
        l1: &l1_words,
    };
    let runbooks: Vec<&model::Runbook> = catalog.runbooks().iter().collect();
    let prepared = l2::prepare(
        &incident,
        &runbooks,
        &l2::RequestSettings {
            provider: provider(planner.cfg.provider),
            model: &planner.cfg.model,
            max_tokens: planner.cfg.max_tokens,
            known_hosts: &known,
        },
    );
    let mut body = L2Body {
        target: TargetRecord {
            name: target.name.clone(),
            platform: target.platform.as_str().to_owned(),
            device_type: target.device_type.as_str().to_owned(),
        },
        check: check.id.clone(),
        provider: prepared.provider.to_string(),
        model: prepared.model.clone(),
        answered_by: None,
        request_sha256: prepared.body_sha256.clone(),
        request: prepared.body.clone(),
        pseudonyms: prepared
            .scrubber
            .counts()
            .into_iter()
            .map(|(kind, n)| (kind.label().to_lowercase(), n as u64))
            .collect(),
        reply: None,
        guardrails: Vec::new(),
        verdict: "escalated".to_owned(),
        reason: String::new(),
        runbook: None,
        params: BTreeMap::new(),
        confidence: None,
        input_tokens: 0,
        output_tokens: 0,
        tokens_estimated: false,
        cost_usd: l2::money_words(0),
        attempts: 0,
        outcome: "escalated".to_owned(),
        before: state(&l1.before),
        after: None,
        remediation: None,
        rollback: None,
    };
    let verdict = ask(planner, &prepared, &runbooks, now, &mut body).await;
    let mut pending = None;
    planner.save_spending();
    let mut record = HealRecord {
        target: target.name.clone(),
        check: check.id.clone(),
        decision: l1.decision.clone(),
        before: l1.before.clone(),
        remediation: None,
        after: None,
        rollback: None,
        result: HealResult::NoRule,
    };
    let escalate = |reason: String| {
        let reason = match &l1.decision {
            Decision::Escalate {
                reason: l1_reason, ..
            } => format!("{l1_reason}; L2: {reason}"),
            _ => format!("L2: {reason}"),
        };
        (
            Decision::Escalate {
                rule: None,
                reason: reason.clone(),
            },
            HealResult::Escalated { reason },
        )
    };
    match verdict {
        Verdict::Escalate(rejection) => {
            body.reason = rejection.to_string();
            (record.decision, record.result) = escalate(rejection.to_string());
            if !matches!(
                rejection,
                Rejection::BudgetExhausted(_)
                    | Rejection::RateLimited { .. }
                    | Rejection::BreakerOpen { .. }
                    | Rejection::ModelEscalated(_)
            ) {
                planner.lock().record_outcome(false, now);
            }
        }
        Verdict::NeedsApproval(plan) => {
            body.verdict = "needs_approval".to_owned();
            body.outcome = "awaiting_approval".to_owned();
            set_plan(&mut body, &plan);
            pending = Some(PendingPlan {
                id: String::new(),
                l2_seq: 0,
                target: target.name.clone(),
                check: check.id.clone(),
                runbook: plan.runbook.clone(),
                params: body.params.clone(),
                confidence: plan.confidence,
                rationale: plan.rationale.clone(),
                at: now,
            });
            (record.decision, record.result) = escalate(format!(
                "proposes {} {} (confidence {}): {}; the runbook is high-risk, so a person must approve it (`osiris l2 list`)",
                plan.runbook,
                params_words(&plan.params),
                plan.confidence,
                plan.rationale
            ));
            planner.lock().record_outcome(true, now);
        }
        Verdict::DryRun { plan, .. } => {
            body.verdict = "dry_run".to_owned();
            body.outcome = "dry_run".to_owned();
            set_plan(&mut body, &plan);
            record.decision = Decision::Remediate {
                rule: "L2".to_owned(),
                runbook: plan.runbook.clone(),
            };
            record.result = HealResult::Planned {
                runbook: plan.runbook.clone(),
            };
            planner.lock().record_outcome(true, now);
        }
        Verdict::Accept(plan) => {
            body.verdict = "accepted".to_owned();
            set_plan(&mut body, &plan);
            record.decision = Decision::Remediate {
                rule: "L2".to_owned(),
                runbook: plan.runbook.clone(),
            };
            let runbook = catalog
                .get(&plan.runbook)
                .with_context(|| format!("runbook {} vanished from the catalogue", plan.runbook))?;
            let mut plan_overrides = overrides.clone();
            plan_overrides
                .entry(plan.runbook.clone())
                .or_default()
                .extend(plan.params.clone());
            let run = PlanRun {
                runbook,
                check,
                plan_overrides: &plan_overrides,
                site_overrides: &overrides,
                powershell_prelude: catalog.powershell_prelude(),
            };
            // Blocking IO over the target's session, like L1's.
            tokio::task::block_in_place(|| match transport.open() {
                Ok(mut session) => heal::execute_plan(session.as_mut(), &run, &mut record),
                Err(err) => {
                    record.result = HealResult::NotFixed {
                        rolled_back: false,
                        reason: format!("target unreachable: {err}"),
                    };
                }
            });
            let fixed = record.result == HealResult::Fixed;
            planner.lock().record_outcome(fixed, now);
            body.outcome = if fixed { "fixed" } else { "not_fixed" }.to_owned();
            if let HealResult::NotFixed { reason, .. } = &record.result {
                body.reason = reason.clone();
            }
            body.after = record.after.as_ref().map(state);
            body.remediation = record.remediation.as_ref().map(step);
            body.rollback = record.rollback.as_ref().map(step);
        }
    }
    tracing::info!(target_name = %target.name, check = %check.id, verdict = %body.verdict, outcome = %body.outcome, cost = %body.cost_usd, "L2 consultation.");
    let draft = evidence::BundleDraft {
        site: config.site.clone(),
        kind: evidence_schema::KIND_L2.to_owned(),
        catalog: catalog.version().to_owned(),
        time: OffsetDateTime::now_utc(),
        body: serde_json::to_value(&body)?,
    };
    let appended = store
        .append(draft)
        .await
        .context("recording the L2 consultation")?;
    if let Some(mut plan) = pending {
        plan.id = format!("l2-{}", appended.seq);
        plan.l2_seq = appended.seq;
        let data_dir = &planner.data_dir;
        let _file = pending_lock();
        let mut all = pending_plans(data_dir)?;
        // One waiting plan per target and check: the newest.
        all.retain(|p| !(p.target == plan.target && p.check == plan.check));
        all.push(plan);
        save_pending(data_dir, &all)?;
    }
    Ok(Consulted {
        record,
        l2_seq: appended.seq,
    })
}

/// Admit, call, charge, judge; fills the usage and reply parts of `body`.
async fn ask(
    planner: &Planner,
    prepared: &l2::Prepared,
    runbooks: &[&model::Runbook],
    now: i64,
    body: &mut L2Body,
) -> Verdict {
    let admitted = planner.lock().admit(prepared, now);
    let reservation = match admitted {
        Ok(reservation) => reservation,
        Err(rejection) => {
            body.guardrails
                .push(format!("before the call: {rejection}"));
            return Verdict::Escalate(rejection);
        }
    };
    body.guardrails
        .push("before the call: budget, rate limit and breaker allow it".to_owned());
    let exchange = match planner.client.send(prepared).await {
        Ok(exchange) => exchange,
        Err(err) => {
            // A timeout may have been billed: charge the worst case. Refusals are not billed.
            if matches!(err, l2::ClientError::Timeout(_)) {
                let charge = planner.lock().charge(reservation, None, now);
                set_charge(body, &charge);
            }
            return Verdict::Escalate(Rejection::Provider(err.to_string()));
        }
    };
    body.attempts = exchange.attempts;
    body.reply = Some(
        String::from_utf8_lossy(&exchange.body[..exchange.body.len().min(REPLY_EXCERPT)])
            .into_owned(),
    );
    let reply = match l2::parse_reply(prepared.provider, &exchange.body) {
        Ok(reply) => reply,
        Err(err) => {
            let usage = l2::usage_only(prepared.provider, &exchange.body);
            let charge = planner.lock().charge(reservation, usage, now);
            set_charge(body, &charge);
            return Verdict::Escalate(Rejection::Provider(err.to_string()));
        }
    };
    let charge = planner.lock().charge(reservation, Some(reply.usage), now);
    set_charge(body, &charge);
    body.answered_by = Some(reply.model.clone());
    let settings = planner.lock().settings().clone();
    l2::judge_reply(&reply, prepared, runbooks, &settings, &mut body.guardrails)
}

fn set_charge(body: &mut L2Body, charge: &l2::Charge) {
    body.input_tokens = charge.input_tokens;
    body.output_tokens = charge.output_tokens;
    body.tokens_estimated = charge.estimated;
    body.cost_usd = l2::money_words(charge.pico_usd);
}

fn set_plan(body: &mut L2Body, plan: &l2::Plan) {
    body.runbook = Some(plan.runbook.clone());
    body.params = plan
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.to_json()))
        .collect();
    body.confidence = Some(plan.confidence);
}

fn params_words(params: &BTreeMap<String, ParamValue>) -> String {
    if params.is_empty() {
        return "with the site's parameters".to_owned();
    }
    let parts: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k} = {}", v.to_json()))
        .collect();
    format!("with {}", parts.join(", "))
}

fn provider(provider: L2Provider) -> Provider {
    match provider {
        L2Provider::Anthropic => Provider::Anthropic,
        L2Provider::Openai => Provider::OpenAi,
    }
}

fn state(outcome: &model::CheckOutcome) -> CheckState {
    CheckState {
        status: outcome.status.as_str().to_owned(),
        observed: outcome.observed.clone(),
        reason: outcome.reason.clone(),
    }
}

fn step(record: &heal::StepRecord) -> evidence_schema::StepRecord {
    evidence_schema::StepRecord {
        exit_code: record.exit_code,
        stdout: record.stdout.clone(),
        stderr: record.stderr.clone(),
        error: record.error.clone(),
    }
}

/// Every executed L2 plan in the store (the `l2` bundles whose plan ran), for the flywheel.
///
/// # Errors
/// When the store cannot be read or a bundle is not the `l2` schema.
pub async fn flywheel_outcomes(store: &store::Store) -> anyhow::Result<Vec<l2::flywheel::Outcome>> {
    let mut outcomes = Vec::new();
    for seq in 0..=store.size() {
        let Some(entry) = store.entry(seq).await.context("reading the evidence log")? else {
            continue;
        };
        if entry.kind != evidence_schema::KIND_L2 {
            continue;
        }
        let bundle: serde_json::Value =
            serde_json::from_slice(&entry.line).context("reading an l2 bundle")?;
        let body: L2Body = serde_json::from_value(bundle["body"].clone())
            .with_context(|| format!("bundle {seq} is not an l2 body"))?;
        let (Some(runbook), "fixed" | "not_fixed") = (body.runbook, body.outcome.as_str()) else {
            continue;
        };
        let at = bundle["time"]
            .as_str()
            .and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .map_or(0, OffsetDateTime::unix_timestamp);
        outcomes.push(l2::flywheel::Outcome {
            check: body.check,
            observed: body.before.observed,
            runbook,
            params: body
                .params
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
            host: body.target.name,
            fixed: body.outcome == "fixed",
            at,
        });
    }
    Ok(outcomes)
}

/// A person's decisions about flywheel patterns, kept in `<data_dir>/flywheel.json`.
fn decisions_path(data_dir: &Path) -> PathBuf {
    data_dir.join("flywheel.json")
}

/// The decisions made so far (pattern id → decision).
///
/// # Errors
/// When the file exists but cannot be read.
pub fn flywheel_decisions(
    data_dir: &Path,
) -> anyhow::Result<BTreeMap<String, l2::flywheel::Decision>> {
    let path = decisions_path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    let saved: BTreeMap<String, String> =
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    Ok(saved
        .into_iter()
        .filter_map(|(id, d)| {
            let decision = match d.as_str() {
                "approved" => l2::flywheel::Decision::Approved,
                "rejected" => l2::flywheel::Decision::Rejected,
                "demoted" => l2::flywheel::Decision::Demoted,
                _ => return None,
            };
            Some((id, decision))
        })
        .collect())
}

/// Every pattern with its standing.
///
/// # Errors
/// When the store or the decisions cannot be read.
pub async fn flywheel_list(
    store: &store::Store,
    data_dir: &Path,
) -> anyhow::Result<Vec<(l2::flywheel::Pattern, l2::flywheel::Standing)>> {
    let decisions = flywheel_decisions(data_dir)?;
    let outcomes = flywheel_outcomes(store).await?;
    let mut patterns = l2::flywheel::patterns(&outcomes);
    // After promotion L1 runs the pattern's rule (`L1-FLY-<hex>` for `fw-<hex>`): its attempts
    // count for the pattern too, so a rule that stops working is demoted.
    let attempts = store
        .heal_attempts_since(0)
        .await
        .context("reading the healing history")?;
    for attempt in attempts {
        let Some(hex) = attempt.rule.strip_prefix("L1-FLY-") else {
            continue;
        };
        if let Some(pattern) = patterns.iter_mut().find(|p| p.id[3..] == *hex) {
            pattern.attempts += 1;
            if attempt.verified {
                pattern.successes += 1;
                pattern.hosts.insert(attempt.target.clone());
            }
            pattern.last_at = pattern.last_at.max(attempt.at);
        }
    }
    Ok(patterns
        .into_iter()
        .map(|p| {
            let standing = l2::flywheel::standing(
                &p,
                &l2::flywheel::Thresholds::DEFAULT,
                decisions.get(&p.id).copied(),
            );
            (p, standing)
        })
        .collect())
}

/// The L1 rules of the promoted patterns (approved, still at 90 % or more), in the rules-file
/// format, for `rules::embedded_with`; empty when there are none. An approved pattern that fell
/// below the threshold is demoted here: sealed once as a `flywheel` bundle and recorded in the
/// decisions, and its rule is left out.
///
/// # Errors
/// When the store or the decisions cannot be read or written.
pub async fn flywheel_rules(
    store: &store::Store,
    config: &config::Config,
    catalog: &catalog::Catalog,
    data_dir: &Path,
) -> anyhow::Result<String> {
    if !decisions_path(data_dir).exists() {
        return Ok(String::new());
    }
    let _file = DECISIONS_FILE.lock().await;
    let mut decisions = flywheel_decisions(data_dir)?;
    let mut rules = Vec::new();
    for (pattern, standing) in flywheel_list(store, data_dir).await? {
        match standing {
            l2::flywheel::Standing::Promoted => rules.push(l2::flywheel::proposed_rule(&pattern)),
            l2::flywheel::Standing::Demoted
                if decisions.get(&pattern.id) == Some(&l2::flywheel::Decision::Approved) =>
            {
                let body = evidence_schema::FlywheelBody {
                    event: "demoted".to_owned(),
                    pattern: pattern.id.clone(),
                    check: pattern.key.check.clone(),
                    runbook: pattern.key.runbook.clone(),
                    params: pattern.key.params.clone(),
                    attempts: u64::from(pattern.attempts),
                    successes: u64::from(pattern.successes),
                    hosts: pattern.hosts.len() as u64,
                    rule: format!("L1-FLY-{}", &pattern.id[3..]),
                };
                let draft = evidence::BundleDraft {
                    site: config.site.clone(),
                    kind: evidence_schema::KIND_FLYWHEEL.to_owned(),
                    catalog: catalog.version().to_owned(),
                    time: OffsetDateTime::now_utc(),
                    body: serde_json::to_value(body)?,
                };
                store
                    .append(draft)
                    .await
                    .context("recording the demotion")?;
                tracing::warn!(pattern = %pattern.id, check = %pattern.key.check, "A promoted flywheel rule fell below 90 % and is demoted.");
                decisions.insert(pattern.id.clone(), l2::flywheel::Decision::Demoted);
                save_decisions(data_dir, &decisions)?;
            }
            _ => {}
        }
    }
    Ok(rules.join("\n"))
}

/// Serialises every read-modify-write of the flywheel's decisions in this process (a person's
/// decision through the local API while `osirisd` reloads its rules and records a demotion).
static DECISIONS_FILE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn save_decisions(
    data_dir: &Path,
    decisions: &BTreeMap<String, l2::flywheel::Decision>,
) -> anyhow::Result<()> {
    let saved: BTreeMap<&str, &str> = decisions
        .iter()
        .map(|(k, d)| {
            (
                k.as_str(),
                match d {
                    l2::flywheel::Decision::Approved => "approved",
                    l2::flywheel::Decision::Rejected => "rejected",
                    l2::flywheel::Decision::Demoted => "demoted",
                },
            )
        })
        .collect();
    durable::write(
        &decisions_path(data_dir),
        serde_json::to_string_pretty(&saved)?.as_bytes(),
        0o600,
    )
    .context("saving the flywheel decisions")
}

/// Records a person's decision about a pattern and seals it as an `operator_action` bundle
/// (`flywheel_approve` or `flywheel_reject`, with the pattern, its record and the proposed
/// rule); only a proposed pattern can be approved.
///
/// # Errors
/// When the id is unknown or the pattern is not proposed (the message says what to do), or the
/// store or the decisions file cannot be written.
#[allow(clippy::too_many_arguments, reason = "the decision needs all of it")]
pub async fn flywheel_decide(
    store: &store::Store,
    config: &config::Config,
    catalog: &catalog::Catalog,
    data_dir: &Path,
    id: &str,
    decision: l2::flywheel::Decision,
    by: &str,
    peer: Option<evidence_schema::PeerCredentials>,
) -> anyhow::Result<u64> {
    let _file = DECISIONS_FILE.lock().await;
    let list = flywheel_list(store, data_dir).await?;
    let Some((pattern, standing)) = list.iter().find(|(p, _)| p.id == id) else {
        anyhow::bail!("no flywheel pattern `{id}`: `osiris flywheel list` shows the ids");
    };
    if decision == l2::flywheel::Decision::Approved && *standing != l2::flywheel::Standing::Proposed
    {
        anyhow::bail!(
            "pattern {id} is {standing}, not proposed: a pattern needs 5 verified fixes on 2 hosts at 90 % before it can be approved"
        );
    }
    let mut decisions = flywheel_decisions(data_dir)?;
    decisions.insert(id.to_owned(), decision);
    let action = match decision {
        l2::flywheel::Decision::Approved => "flywheel_approve",
        l2::flywheel::Decision::Rejected | l2::flywheel::Decision::Demoted => "flywheel_reject",
    };
    let body = evidence_schema::OperatorActionBody {
        action: action.to_owned(),
        by: by.to_owned(),
        reason: String::new(),
        details: serde_json::json!({
            "pattern": pattern.id,
            "check": pattern.key.check,
            "observation": pattern.key.observation,
            "runbook": pattern.key.runbook,
            "params": pattern.key.params,
            "attempts": pattern.attempts,
            "successes": pattern.successes,
            "hosts": pattern.hosts.len(),
            "proposed_rule": l2::flywheel::proposed_rule(pattern),
        }),
        peer,
    };
    let draft = evidence::BundleDraft {
        site: config.site.clone(),
        kind: evidence_schema::KIND_OPERATOR_ACTION.to_owned(),
        catalog: catalog.version().to_owned(),
        time: OffsetDateTime::now_utc(),
        body: serde_json::to_value(body)?,
    };
    // Sealed first: a decision that is in the file is always in the log.
    let appended = store
        .append(draft)
        .await
        .context("recording the flywheel decision")?;
    save_decisions(data_dir, &decisions)?;
    Ok(appended.seq)
}

/// An L2 plan for a high-risk runbook, waiting for a person (`osiris l2 list | approve | reject`),
/// kept in `<data_dir>/l2-pending.json`; its `l2` bundle is `l2_seq`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PendingPlan {
    /// `l2-<seq>`.
    pub id: String,
    pub l2_seq: u64,
    pub target: String,
    pub check: String,
    pub runbook: String,
    pub params: BTreeMap<String, serde_json::Value>,
    pub confidence: f64,
    pub rationale: String,
    /// Unix seconds.
    pub at: i64,
}

/// What a person's decision about a waiting plan did.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The `operator_action` bundle that records the decision.
    pub action_seq: u64,
    /// For an approval: what running the plan did, and its `heal` bundle.
    pub record: Option<HealRecord>,
    pub heal_seq: Option<u64>,
}

fn pending_path(data_dir: &Path) -> PathBuf {
    data_dir.join("l2-pending.json")
}

/// Plans being decided in this process: an id here is refused a second decision meanwhile.
static DECIDING: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Serialises every read-modify-write of the waiting plans' file in this process (a heal cycle
/// adding a plan while a person's decision removes another, both in `osirisd`).
static PENDING_FILE: Mutex<()> = Mutex::new(());

fn pending_lock() -> std::sync::MutexGuard<'static, ()> {
    PENDING_FILE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The claim on a plan while it is decided; released on drop.
struct Deciding(String);

impl Deciding {
    fn claim(id: &str) -> anyhow::Result<Deciding> {
        let mut deciding = DECIDING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if deciding.iter().any(|d| d == id) {
            anyhow::bail!(
                "L2 plan `{id}` is being decided right now; `osiris l2 list` shows whether it still waits"
            );
        }
        deciding.push(id.to_owned());
        Ok(Deciding(id.to_owned()))
    }
}

impl Drop for Deciding {
    fn drop(&mut self) {
        DECIDING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|d| *d != self.0);
    }
}

/// The plans waiting for approval, oldest first.
///
/// # Errors
/// When the file exists but cannot be read.
pub fn pending_plans(data_dir: &Path) -> anyhow::Result<Vec<PendingPlan>> {
    let path = pending_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

fn save_pending(data_dir: &Path, plans: &[PendingPlan]) -> anyhow::Result<()> {
    durable::write(
        &pending_path(data_dir),
        serde_json::to_string_pretty(plans)?.as_bytes(),
        0o600,
    )
    .context("saving the plans waiting for approval")
}

/// A person approves (runs it now: the check is re-run first, and a check that passes by now
/// is left alone) or rejects a waiting plan; the decision is sealed as an `operator_action`
/// bundle (`l2_approve`, `l2_reject`) before anything runs, an executed plan as a `heal` bundle.
///
/// # Errors
/// When the id is unknown (the message says where to look), the target or runbook is gone, or
/// the store or files cannot be written.
#[allow(clippy::too_many_arguments, reason = "the decision needs all of it")]
pub async fn decide_pending(
    store: &store::Store,
    config: &config::Config,
    catalog: &catalog::Catalog,
    data_dir: &Path,
    id: &str,
    approve: bool,
    by: &str,
    peer: Option<evidence_schema::PeerCredentials>,
    now: i64,
) -> anyhow::Result<Decided> {
    let _claim = Deciding::claim(id)?;
    let plan = pending_plans(data_dir)?.into_iter().find(|p| p.id == id);
    let Some(plan) = plan else {
        anyhow::bail!("no L2 plan `{id}` waits for approval: `osiris l2 list` shows them");
    };
    let body = evidence_schema::OperatorActionBody {
        action: if approve { "l2_approve" } else { "l2_reject" }.to_owned(),
        by: by.to_owned(),
        reason: String::new(),
        details: serde_json::to_value(&plan)?,
        peer,
    };
    let draft = evidence::BundleDraft {
        site: config.site.clone(),
        kind: evidence_schema::KIND_OPERATOR_ACTION.to_owned(),
        catalog: catalog.version().to_owned(),
        time: OffsetDateTime::now_utc(),
        body: serde_json::to_value(body)?,
    };
    let action_seq = store
        .append(draft)
        .await
        .context("recording the decision")?
        .seq;
    {
        // Read again: a heal cycle may have added a plan while the decision was sealed.
        let _file = pending_lock();
        let mut all = pending_plans(data_dir)?;
        all.retain(|p| p.id != id);
        save_pending(data_dir, &all)?;
    }
    if !approve {
        return Ok(Decided {
            action_seq,
            record: None,
            heal_seq: None,
        });
    }
    let runbook = catalog
        .get(&plan.runbook)
        .with_context(|| format!("runbook {} is no longer in the catalogue", plan.runbook))?;
    let check = catalog
        .get(&plan.check)
        .with_context(|| format!("check {} is no longer in the catalogue", plan.check))?;
    // The parameters were validated when the plan was judged; check them again against today's
    // catalogue before they reach a host.
    let mut params = BTreeMap::new();
    for (name, value) in &plan.params {
        let typed = match value {
            serde_json::Value::Bool(b) => ParamValue::Boolean(*b),
            serde_json::Value::Number(n) => ParamValue::Integer(
                n.as_i64()
                    .with_context(|| format!("parameter `{name}` is not an integer"))?,
            ),
            serde_json::Value::String(text) => ParamValue::Text(text.clone()),
            _ => anyhow::bail!("parameter `{name}` has an unusable value"),
        };
        params.insert(name.clone(), typed);
    }
    model::resolve_params(&runbook.params, &params).map_err(|err| {
        anyhow::anyhow!("the plan's parameters no longer fit {}: {err}", runbook.id)
    })?;
    let (target, transport) = crate::scan::target_transport(config, data_dir, &plan.target)?;
    let overrides = config.param_overrides();
    let mut plan_overrides = overrides.clone();
    plan_overrides
        .entry(plan.runbook.clone())
        .or_default()
        .extend(params);
    let prelude = catalog.powershell_prelude();
    let site = scan::ScriptContext {
        overrides: &overrides,
        powershell_prelude: prelude,
    };
    let run = PlanRun {
        runbook,
        check,
        plan_overrides: &plan_overrides,
        site_overrides: &overrides,
        powershell_prelude: prelude,
    };
    let record = tokio::task::block_in_place(|| -> anyhow::Result<Option<HealRecord>> {
        let mut session = transport
            .open()
            .with_context(|| format!("connecting to {}", plan.target))?;
        let before = scan::run_check(session.as_mut(), check, &site);
        if before.status != model::CheckStatus::Fail {
            return Ok(None);
        }
        let mut record = HealRecord {
            target: plan.target.clone(),
            check: plan.check.clone(),
            decision: Decision::Remediate {
                rule: "L2".to_owned(),
                runbook: plan.runbook.clone(),
            },
            before,
            remediation: None,
            after: None,
            rollback: None,
            result: HealResult::NoRule,
        };
        heal::execute_plan(session.as_mut(), &run, &mut record);
        Ok(Some(record))
    })?;
    let heal_seq = match &record {
        Some(record) => {
            crate::heal::record_evidence(store, config, catalog, &target, record, now).await?
        }
        None => None,
    };
    Ok(Decided {
        action_seq,
        record,
        heal_seq,
    })
}

/// Resolutions by tier on one UTC day: fixed by L1 (including promoted flywheel rules), fixed
/// by L2, handed to a person (L3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierDay {
    /// Unix days.
    pub day: i64,
    pub l1: u64,
    pub l2: u64,
    pub l3: u64,
}

/// Resolutions by tier per UTC day, oldest first, from the sealed `heal` and `escalation`
/// bundles (a fix is a `heal` bundle with result `fixed`; its rule `L2` makes it an L2 fix).
///
/// # Errors
/// When the store cannot be read.
pub async fn tier_shares(store: &store::Store) -> anyhow::Result<Vec<TierDay>> {
    let mut days: BTreeMap<i64, TierDay> = BTreeMap::new();
    for seq in 0..=store.size() {
        let Some(entry) = store.entry(seq).await.context("reading the evidence log")? else {
            continue;
        };
        if entry.kind != evidence_schema::KIND_HEAL
            && entry.kind != evidence_schema::KIND_ESCALATION
        {
            continue;
        }
        let bundle: serde_json::Value =
            serde_json::from_slice(&entry.line).context("reading a bundle")?;
        let day = bundle["time"]
            .as_str()
            .and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .map_or(0, |t| t.unix_timestamp().div_euclid(86_400));
        let counts = days.entry(day).or_insert(TierDay {
            day,
            ..TierDay::default()
        });
        let body = &bundle["body"];
        if entry.kind == evidence_schema::KIND_ESCALATION {
            counts.l3 += 1;
        } else if body["result"] == "fixed" {
            if body["rule"] == "L2" {
                counts.l2 += 1;
            } else {
                counts.l1 += 1;
            }
        }
    }
    Ok(days.into_values().collect())
}
