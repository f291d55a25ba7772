//! Endpoint-agent releases offered by the partner's Central Command (`POST
//! /v1/link/agent-releases`): an offered release this appliance does not hold yet is added to
//! its own agent release store — at 100 % of its agents, Central Command's rollout having
//! already chosen this appliance — after the store verified the document against this
//! appliance's `[agents] release_root` and the binary against the document. Central Command is
//! never trusted for authenticity: a release that does not verify is refused (and, by the link,
//! not tried again until the offer changes). Without `[agents] release_root` offers are ignored,
//! and the log says so once.

use std::sync::atomic::{AtomicBool, Ordering};

use link_client::AgentReleaseAnswer;

use crate::shared::Shared;

/// The share of this appliance's agents a release from Central Command is offered to.
const ROLLOUT_PERCENT: u8 = 100;

/// Said once per process: offers are ignored without an agent root.
static SAID_NO_ROOT: AtomicBool = AtomicBool::new(false);

fn releases(shared: &Shared) -> Result<&agent_gateway::Releases, AgentReleaseAnswer> {
    match shared
        .agents
        .get()
        .and_then(|runtime| runtime.releases.as_ref())
    {
        Some(releases) => Ok(releases),
        None => {
            let why = "agent releases are off here: set [agents] release_root to the vendor's signed agent root to take the partner's agent releases";
            if !SAID_NO_ROOT.swap(true, Ordering::Relaxed) {
                tracing::warn!("Central Command offers agent releases; they are ignored: {why}");
            }
            Err(AgentReleaseAnswer::NotWanted(why.to_owned()))
        }
    }
}

/// Whether the offered release is worth fetching: `None` to fetch it, else why not (held
/// already, agent releases off, or a document that does not verify here).
pub(crate) fn judge(
    shared: &Shared,
    offer: &link_proto::AgentReleaseOffer,
) -> Result<Option<AgentReleaseAnswer>, String> {
    let releases = match releases(shared) {
        Ok(releases) => releases,
        Err(answer) => return Ok(Some(answer)),
    };
    let store = releases
        .read()
        .map_err(|_| "the agent release store lock is poisoned".to_owned())?;
    let now = u64::try_from(crate::now()).unwrap_or(0);
    let release = match store
        .current_root()
        .verify_manifest(offer.manifest.as_bytes(), now)
    {
        Ok(release) => release,
        Err(err) => {
            return Ok(Some(AgentReleaseAnswer::Refused(format!(
                "the document of {} {} does not verify under this appliance's agent root: {err}",
                offer.platform, offer.version
            ))));
        }
    };
    let held = store
        .list()
        .into_iter()
        .any(|info| info.platform == release.platform() && info.version >= release.version());
    Ok(held.then_some(AgentReleaseAnswer::Held))
}

/// Adds the offered release with its fetched binary to the store (which verifies both), then
/// offers it to the connected agents.
pub(crate) async fn add(
    shared: &Shared,
    offer: &link_proto::AgentReleaseOffer,
    binary: Vec<u8>,
) -> Result<AgentReleaseAnswer, String> {
    let releases = match releases(shared) {
        Ok(releases) => std::sync::Arc::clone(releases),
        Err(answer) => return Ok(answer),
    };
    // Staged beside the store (the store copies it in, checking size and SHA-256 on the bytes
    // it keeps), and removed afterwards.
    let staged = shared
        .settings
        .data_dir
        .join(format!(".incoming-agent-release-{}", offer.id));
    let manifest = offer.manifest.clone().into_bytes();
    let store = std::sync::Arc::clone(&releases);
    let added = tokio::task::spawn_blocking(move || {
        std::fs::write(&staged, &binary).map_err(|err| {
            format!(
                "staging the offered agent binary in {}: {err}",
                staged.display()
            )
        })?;
        let now = u64::try_from(crate::now()).unwrap_or(0);
        let added = store
            .write()
            .map_err(|_| "the agent release store lock is poisoned".to_owned())
            .map(|mut store| store.add(&manifest, &staged, ROLLOUT_PERCENT, now));
        let _ = std::fs::remove_file(&staged);
        added
    })
    .await
    .map_err(|err| err.to_string())??;
    use agent_release::store::StoreError;
    match added {
        Ok(info) => {
            tracing::info!(
                platform = info.platform.as_str(),
                version = %info.version,
                sha256 = info.sha256,
                "an agent release from the partner's Central Command verified and is offered to this appliance's agents"
            );
            crate::api::actions::operator_action(
                shared,
                "agent_release_add",
                "Central Command",
                "the partner's agent rollout offered it; verified against this appliance's agent root",
                serde_json::json!({
                    "platform": info.platform.as_str(), "version": info.version.to_string(),
                    "sha256": info.sha256, "size": info.size, "rollout_percent": info.rollout_percent,
                }),
            )
            .await
            .map_err(|err| format!("recording the added agent release: {err:?}"))?;
            if let Some(runtime) = shared.agents.get() {
                agent_gateway::offer_to_connected(&runtime.handle, &releases);
            }
            Ok(AgentReleaseAnswer::Added)
        }
        Err(StoreError::NotNewer { .. }) => Ok(AgentReleaseAnswer::Held),
        Err(err @ (StoreError::Verify(_) | StoreError::Mismatch(_))) => {
            Ok(AgentReleaseAnswer::Refused(format!(
                "{} {} from Central Command: {err}",
                offer.platform, offer.version
            )))
        }
        Err(err) => Err(format!(
            "adding agent release {} {}: {err}",
            offer.platform, offer.version
        )),
    }
}
