//! The link to the partner's Central Command (`[central]`): a background task that asks to be
//! claimed with the console's claim code, then pushes the newest signed checkpoint (keeping the
//! witness's cosignatures in the store), device summaries, incidents, the healing log and the
//! update state (docs/CENTRAL-PROTOCOL.md lists every field), and seals what partner users did
//! about its incidents there (`central_actions`). Outbound HTTPS only.

use std::sync::Arc;
use std::time::Duration;

use link_client::{Appliance, Link, LinkStatus};

use crate::shared::Shared;

/// While waiting for the partner's claim, ask this often.
const CLAIM_POLL: Duration = Duration::from_secs(30);
/// After a failure (Central Command away, refused), retry this soon (at most).
const RETRY: Duration = Duration::from_secs(60);

/// What the link needs of this appliance, from the daemon's store and settings.
struct ThisAppliance<'a> {
    shared: &'a Shared,
}

impl Appliance for ThisAppliance<'_> {
    fn appliance_key(&self) -> String {
        self.shared.store.verifier().to_string()
    }

    fn claim_code(&self) -> String {
        self.shared.settings.claim_code.clone()
    }

    fn sign_link_message(&self, message: &[u8]) -> String {
        // Only link messages reach here (link-client builds them); a refusal would be a bug,
        // and an empty signature is then refused by Central Command.
        self.shared
            .store
            .sign_link_message(message)
            .unwrap_or_default()
    }

    async fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, String> {
        self.shared
            .store
            .latest_checkpoint()
            .await
            .map(|checkpoint| checkpoint.map(|c| (c.size, c.note)))
            .map_err(|err| err.to_string())
    }

    async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<[u8; 32]>, String> {
        self.shared
            .store
            .consistency_proof(old, new)
            .await
            .map_err(|err| err.to_string())
    }

    async fn keep_cosignature(&self, size: u64, line: &str) -> Result<(), String> {
        self.shared
            .store
            .put_cosignature(size, line)
            .await
            .map_err(|err| err.to_string())
    }

    async fn devices(&self) -> Result<link_client::Snapshot, String> {
        let state = self.shared.state();
        // Names, classes, verdicts, counts and failing check ids only: no address, no observed
        // value, no error text from a host (docs/CENTRAL-PROTOCOL.md lists every field).
        let devices = state
            .saved
            .devices
            .values()
            .map(|device| link_proto::DeviceSummary {
                name: device.name.clone(),
                class: enum_word(&device.class),
                status: enum_word(&device.status),
                last_scan_at: device.last_scan_at,
                checks_total: device.checks_total,
                checks_failed: device.checks_failed,
                failing: device.failing.iter().map(|f| f.check.clone()).collect(),
                unchecked: unchecked_reason(device).map(str::to_owned),
            })
            .collect();
        let compliance = crate::derive::site_compliance(
            &self.shared.settings.catalog,
            crate::derive::frameworks(),
            &self.shared.accepted(),
            state.scores.iter(),
        )
        .into_iter()
        .map(
            |(framework, _, _, _, permille)| link_proto::FrameworkSummary {
                framework,
                permille,
            },
        )
        .collect();
        Ok((crate::now(), devices, compliance))
    }

    async fn incidents(&self) -> Result<Vec<link_proto::IncidentSummary>, String> {
        let state = self.shared.state();
        // No transition reasons: they can carry what a host printed.
        Ok(state
            .ledger
            .all()
            .into_iter()
            .map(|incident| {
                let skip = incident.transitions.len().saturating_sub(100);
                link_proto::IncidentSummary {
                    id: incident.id,
                    device: incident.target.clone(),
                    check: incident.check.clone(),
                    severity: incident.severity.as_str().to_owned(),
                    phase: enum_word(&incident.phase),
                    opened_at: incident.opened_at,
                    updated_at: incident.updated_at,
                    occurrences: incident.occurrences,
                    flapping: incident.flapping,
                    acknowledged: incident.acknowledged,
                    transitions: incident
                        .transitions
                        .iter()
                        .skip(skip)
                        .map(|t| link_proto::PhaseChange {
                            at: t.at,
                            from: enum_word(&t.from),
                            to: enum_word(&t.to),
                        })
                        .collect(),
                }
            })
            .collect())
    }

    async fn healing_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<link_proto::HealEntry>, String> {
        let attempts = self
            .shared
            .store
            .heal_attempts_after(after, limit)
            .await
            .map_err(|err| err.to_string())?;
        Ok(attempts
            .into_iter()
            .map(|(id, attempt)| link_proto::HealEntry {
                id,
                at: attempt.at,
                device: attempt.target,
                check: attempt.check,
                tier: "L1".to_owned(),
                rule: Some(attempt.rule),
                result: if attempt.verified {
                    "fixed"
                } else {
                    "not_fixed"
                }
                .to_owned(),
                evidence_seq: attempt.evidence_seq,
            })
            .collect())
    }

    async fn export_kit(&self, dir: &std::path::Path) -> Result<(), String> {
        self.shared
            .store
            .export_kit(dir)
            .await
            .map(|_| ())
            .map_err(|err| err.to_string())
    }

    async fn offer_manifest(&self, offer: Option<(String, Vec<u8>)>) -> Result<(), String> {
        // The updater (root) reads it from its spool, which this daemon owns, and verifies it
        // against the vendor key it pins: this daemon can withhold an update, never forge one.
        let spool = update::spool_dir(&self.shared.settings.config.daemon.update_state_dir);
        let path = spool.join(update::OFFERED_MANIFEST);
        tokio::task::spawn_blocking(move || match offer {
            Some((version, manifest)) => {
                if !spool.is_dir() {
                    return Err(format!(
                        "the partner offers release {version}, but the image updater is not set up here ({} is missing)",
                        spool.display()
                    ));
                }
                durable::write(&path, &manifest, 0o644)
                    .map_err(|err| format!("writing the offered release {version}: {err}"))
            }
            None => match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(err) => Err(format!("withdrawing the offered release {}: {err}", path.display())),
            },
        })
        .await
        .map_err(|err| err.to_string())?
    }

    async fn set_partner_channels(
        &self,
        channels: Vec<link_client::PartnerChannel>,
    ) -> Result<(), String> {
        let config = self.shared.settings.config.clone();
        let data_dir = self.shared.settings.data_dir.clone();
        let names: Vec<String> = channels.iter().map(|c| c.name.clone()).collect();
        let ready = tokio::task::spawn_blocking(move || {
            crate::partner_channels::replace(&config, &data_dir, &channels)
        })
        .await
        .map_err(|err| err.to_string())?
        .map_err(|err| format!("{err:#}"))?;
        if let Ok(mut partner) = self.shared.partner_channels.write() {
            *partner = ready;
        }
        tracing::info!(channels = ?names, "the partner's escalation channels are in use");
        // Escalations waiting for a channel may go out now.
        self.shared.notifier.notify_one();
        Ok(())
    }

    async fn operator_actions(
        &self,
        actions: Vec<link_proto::OperatorAction>,
    ) -> Result<Vec<link_proto::SealedAction>, String> {
        crate::central_actions::seal(self.shared, actions).await
    }

    async fn judge_agent_release(
        &self,
        offer: &link_proto::AgentReleaseOffer,
    ) -> Result<Option<link_client::AgentReleaseAnswer>, String> {
        crate::central_agents::judge(self.shared, offer)
    }

    async fn add_agent_release(
        &self,
        offer: &link_proto::AgentReleaseOffer,
        binary: Vec<u8>,
    ) -> Result<link_client::AgentReleaseAnswer, String> {
        crate::central_agents::add(self.shared, offer, binary).await
    }

    async fn packets(&self) -> Result<Vec<link_client::LocalPacket>, String> {
        // The packets the log says were made (`packet.rs`), each with its sealed bundle's line.
        let store = &self.shared.store;
        let sealed = ops::report::sealed_packets(store.reads(), store.size())
            .await
            .map_err(|err| format!("{err:#}"))?;
        let mut res = Vec::new();
        for (period, packet) in sealed {
            let entry = store
                .entry(packet.seq)
                .await
                .map_err(|err| err.to_string())?
                .ok_or_else(|| format!("packet bundle #{} is not stored", packet.seq))?;
            res.push(link_client::LocalPacket {
                period,
                dir: self.shared.settings.data_dir.join(&packet.body.directory),
                bundle_line: entry.line,
                files: packet.body.files.iter().map(|f| f.name.clone()).collect(),
            });
        }
        Ok(res)
    }

    async fn update_state(&self) -> Result<link_proto::UpdateSummary, String> {
        let state = crate::updates::state(&self.shared.settings.config.daemon.update_state_dir);
        Ok(link_proto::UpdateSummary {
            current: state.current,
            available: state.available,
            state: state.state,
            detail: state.detail.map(|d| d.chars().take(500).collect()),
            ots: {
                let (pending, anchored) = self.shared.facts.ots_counts();
                Some(link_proto::OtsCounts { pending, anchored })
            },
        })
    }
}

/// The snake_case word serde gives a unit enum variant.
fn enum_word(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Runs the link until shutdown; returns at once when `[central]` is not configured.
pub(crate) async fn link_loop(shared: Arc<Shared>) {
    let Some(central) = shared.settings.config.central.clone() else {
        return;
    };
    let mut shutdown = shared.shutdown.clone();
    let mut link = loop {
        match open(&shared, &central) {
            Ok(link) => break link,
            Err(err) => {
                tracing::error!(error = %err, "cannot start the link to Central Command; retrying");
                shared.set_link_status(Some(LinkStatus::Trouble {
                    problem: err.clone(),
                }));
                tokio::select! {
                    () = tokio::time::sleep(RETRY) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    };
    shared.set_link_status(link.status());
    let appliance = ThisAppliance { shared: &shared };
    loop {
        let wait = match link.step(&appliance).await {
            Ok(status) => {
                let wait = match status {
                    LinkStatus::WaitingForClaim { .. } => {
                        CLAIM_POLL.min(Duration::from_secs(central.push_secs))
                    }
                    LinkStatus::Linked { .. } | LinkStatus::Trouble { .. } => {
                        Duration::from_secs(central.push_secs)
                    }
                };
                shared.set_link_status(Some(status));
                wait
            }
            Err(err) => {
                tracing::warn!(error = %err, "link to Central Command");
                shared.set_link_status(Some(LinkStatus::Trouble {
                    problem: err.to_string(),
                }));
                RETRY.min(Duration::from_secs(central.push_secs))
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

fn open(shared: &Shared, central: &config::CentralConfig) -> Result<Link, String> {
    let ca = match &central.ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|err| format!("reading central.ca_file {}: {err}", path.display()))?,
        ),
        None => None,
    };
    let url = url::Url::parse(&central.url).map_err(|err| format!("central.url: {err}"))?;
    Link::open(&url, &shared.settings.data_dir.join("central"), ca).map_err(|err| err.to_string())
}

/// Why a device has no current result, in the link's fixed words (`link_proto::UNCHECKED_REASONS`):
/// the host's own error text never leaves the appliance, only this classification of it.
fn unchecked_reason(device: &api::Device) -> Option<&'static str> {
    match device.status {
        api::DeviceStatus::Compliant | api::DeviceStatus::Drifted => None,
        api::DeviceStatus::Unknown => Some("not_scanned_yet"),
        api::DeviceStatus::Error => {
            let error = device.error.as_deref().unwrap_or_default().to_lowercase();
            let any = |words: &[&str]| words.iter().any(|word| error.contains(word));
            Some(
                if any(&[
                    "authenticat",
                    "password",
                    "login",
                    "logon",
                    "credential",
                    "access is denied",
                    "permission denied",
                    "unauthorized",
                    "401",
                ]) {
                    "login_refused"
                } else if any(&[
                    "unreachable",
                    "timed out",
                    "timeout",
                    "connection refused",
                    "no route",
                    "resolve",
                    "dns",
                    "connect",
                ]) {
                    "unreachable"
                } else {
                    "scan_failed"
                },
            )
        }
    }
}

#[cfg(test)]
mod unchecked_tests {
    use super::*;

    fn device(status: api::DeviceStatus, error: Option<&str>) -> api::Device {
        api::Device {
            name: "ws1".into(),
            class: api::DeviceClass::Workstation,
            intune: None,
            platform: "windows-workstation".into(),
            address: None,
            status,
            last_scan_at: None,
            checks_total: 0,
            checks_failed: 0,
            failing: Vec::new(),
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn reasons_are_fixed_words_whatever_the_host_said() {
        let cases = [
            (api::DeviceStatus::Compliant, None, None),
            (api::DeviceStatus::Drifted, None, None),
            (api::DeviceStatus::Unknown, None, Some("not_scanned_yet")),
            (
                api::DeviceStatus::Error,
                Some("WinRM: HTTP 401 Unauthorized"),
                Some("login_refused"),
            ),
            (
                api::DeviceStatus::Error,
                Some("ssh: Authentication failed for admin"),
                Some("login_refused"),
            ),
            (
                api::DeviceStatus::Error,
                Some("connect to 10.0.0.5:5986: connection timed out"),
                Some("unreachable"),
            ),
            (
                api::DeviceStatus::Error,
                Some("<script>alert(1)</script> exited 3"),
                Some("scan_failed"),
            ),
        ];
        for (status, error, want) in cases {
            let got = unchecked_reason(&device(status, error));
            assert_eq!(got, want, "{status:?} {error:?}");
            assert!(got.is_none_or(|reason| link_proto::UNCHECKED_REASONS.contains(&reason)));
        }
    }
}
