//! The connected agents: one live stream per agent (a newer connection replaces an older one),
//! what each last said about itself, and the way `osirisd` sends them commands.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use agent_proto::v1::{GatewayMessage, gateway_message};
use tokio::sync::{mpsc, oneshot};

/// A connected agent as the gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedAgent {
    pub agent_id: String,
    pub hostname: String,
    /// When its stream opened (unix seconds).
    pub since: i64,
    /// Its last heartbeat (unix seconds).
    pub last_heartbeat: Option<i64>,
    /// The highest sequence number it has assigned (from heartbeats).
    pub newest_seq: u64,
    /// Items waiting in its queue (from heartbeats).
    pub queue_items: u64,
    /// Its clock minus the appliance's at its last heartbeat, milliseconds.
    pub clock_skew_ms: i64,
    /// The version it runs.
    pub agent_version: String,
    /// `linux-x86_64` or `windows-x86_64`.
    pub platform: String,
}

/// The agent is not connected now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("agent {0} is not connected now; the request is not queued, ask again when it is")]
pub struct NotConnected(pub String);

pub(crate) struct Session {
    pub(crate) info: ConnectedAgent,
    pub(crate) outbound: mpsc::Sender<GatewayMessage>,
    /// Ends the stream (a newer connection of the same agent, or a revocation).
    pub(crate) stop: Option<oneshot::Sender<&'static str>>,
    pub(crate) generation: u64,
}

/// Commands to connected agents and what is known of them; cheap to clone.
#[derive(Clone, Default)]
pub struct GatewayHandle {
    pub(crate) inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) sessions: HashMap<String, Session>,
    pub(crate) next_generation: u64,
}

impl std::fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayHandle").finish_non_exhaustive()
    }
}

impl GatewayHandle {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends `kind` to a connected agent.
    ///
    /// # Errors
    /// When the agent is not connected (nothing is queued for later).
    pub fn send(&self, agent_id: &str, kind: gateway_message::Kind) -> Result<(), NotConnected> {
        let outbound = self
            .lock()
            .sessions
            .get(agent_id)
            .map(|session| session.outbound.clone())
            .ok_or_else(|| NotConnected(agent_id.to_owned()))?;
        outbound
            .try_send(GatewayMessage { kind: Some(kind) })
            .map_err(|_| NotConnected(agent_id.to_owned()))
    }

    /// Every connected agent, by ID.
    #[must_use]
    pub fn connected(&self) -> Vec<ConnectedAgent> {
        let mut agents: Vec<ConnectedAgent> = self
            .lock()
            .sessions
            .values()
            .map(|session| session.info.clone())
            .collect();
        agents.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        agents
    }

    /// The connected agent filed under `hostname`, if any.
    #[must_use]
    pub fn by_hostname(&self, hostname: &str) -> Option<ConnectedAgent> {
        self.lock()
            .sessions
            .values()
            .find(|session| session.info.hostname == hostname)
            .map(|session| session.info.clone())
    }

    /// Ends an agent's stream now (after a revocation); `false` when it was not connected.
    pub fn disconnect(&self, agent_id: &str, why: &'static str) -> bool {
        let stop = self
            .lock()
            .sessions
            .get_mut(agent_id)
            .and_then(|session| session.stop.take());
        stop.is_some_and(|stop| stop.send(why).is_ok())
    }

    /// Registers a new stream; an older one of the same agent is told to end. Returns its
    /// generation (to unregister only itself) and the stop signal.
    pub(crate) fn register(
        &self,
        info: ConnectedAgent,
        outbound: mpsc::Sender<GatewayMessage>,
    ) -> (u64, oneshot::Receiver<&'static str>) {
        let (stop, stopped) = oneshot::channel();
        let mut inner = self.lock();
        inner.next_generation += 1;
        let generation = inner.next_generation;
        let old = inner.sessions.insert(
            info.agent_id.clone(),
            Session {
                info,
                outbound,
                stop: Some(stop),
                generation,
            },
        );
        drop(inner);
        if let Some(stop) = old.and_then(|mut old| old.stop.take()) {
            let _ = stop.send("a newer connection of this agent replaced this one");
        }
        (generation, stopped)
    }

    pub(crate) fn unregister(&self, agent_id: &str, generation: u64) {
        let mut inner = self.lock();
        if inner
            .sessions
            .get(agent_id)
            .is_some_and(|session| session.generation == generation)
        {
            inner.sessions.remove(agent_id);
        }
    }

    pub(crate) fn update(
        &self,
        agent_id: &str,
        generation: u64,
        change: impl FnOnce(&mut ConnectedAgent),
    ) {
        let mut inner = self.lock();
        if let Some(session) = inner
            .sessions
            .get_mut(agent_id)
            .filter(|session| session.generation == generation)
        {
            change(&mut session.info);
        }
    }
}
