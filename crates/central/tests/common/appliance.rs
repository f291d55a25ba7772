//! An appliance in memory speaking the real link (`link-client`): what the link tests and the
//! browser test claim, push from and act on.

#![allow(dead_code, reason = "each test binary uses a different part")]
#![allow(clippy::unwrap_used, reason = "test helpers")]

use std::sync::Mutex;

use evidence::{ApplianceKey, Checkpoint, MerkleTree, leaf_hash};
use link_client::{Appliance, Link};

/// An appliance in memory: its evidence key, its Merkle log, the cosignatures it kept.
pub(crate) struct Box_ {
    pub(crate) key: ApplianceKey,
    pub(crate) code: String,
    pub(crate) tree: Mutex<MerkleTree>,
    pub(crate) cosignatures: Mutex<Vec<(u64, String)>>,
    pub(crate) devices: Mutex<Vec<link_proto::DeviceSummary>>,
    pub(crate) incidents: Mutex<Vec<link_proto::IncidentSummary>>,
    pub(crate) healing: Mutex<Vec<link_proto::HealEntry>>,
    pub(crate) update: Mutex<link_proto::UpdateSummary>,
    pub(crate) offered: Mutex<Option<(String, Vec<u8>)>>,
    pub(crate) channels: Mutex<Vec<link_client::PartnerChannel>>,
    pub(crate) channel_changes: Mutex<u32>,
    /// Every operator action handed to it, in order.
    pub(crate) actions_seen: Mutex<Vec<link_proto::OperatorAction>>,
    /// Action id → the "bundle" that seals it (each id sealed once).
    pub(crate) sealed: Mutex<std::collections::BTreeMap<i64, link_proto::SealedAction>>,
    /// A report it adds of its own (of an action it was not handed).
    pub(crate) forged_report: Mutex<Option<link_proto::SealedAction>>,
    /// The monthly packets it offers.
    pub(crate) packets: Mutex<Vec<link_client::LocalPacket>>,
}

pub(crate) fn device(name: &str, status: &str, failing: &[&str]) -> link_proto::DeviceSummary {
    link_proto::DeviceSummary {
        name: name.to_owned(),
        class: "workstation".to_owned(),
        status: status.to_owned(),
        last_scan_at: Some(1_764_000_000),
        checks_total: 5,
        checks_failed: failing.len() as u32,
        failing: failing.iter().map(|s| (*s).to_owned()).collect(),
        unchecked: None,
    }
}

impl Box_ {
    pub(crate) fn new(seed: u8, code: &str) -> Box_ {
        Box_ {
            key: ApplianceKey::from_seed(&[seed; 32]),
            code: code.to_owned(),
            tree: Mutex::new(MerkleTree::new()),
            cosignatures: Mutex::new(Vec::new()),
            devices: Mutex::new(Vec::new()),
            incidents: Mutex::new(Vec::new()),
            healing: Mutex::new(Vec::new()),
            update: Mutex::new(link_proto::UpdateSummary {
                current: "0.4.0".into(),
                available: None,
                state: "idle".into(),
                detail: None,
                ots: None,
            }),
            offered: Mutex::new(None),
            channels: Mutex::new(Vec::new()),
            channel_changes: Mutex::new(0),
            actions_seen: Mutex::new(Vec::new()),
            sealed: Mutex::new(std::collections::BTreeMap::new()),
            forged_report: Mutex::new(None),
            packets: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn append(&self, n: usize, tag: &str) {
        let mut tree = self.tree.lock().unwrap();
        for i in 0..n {
            tree.push(leaf_hash(format!("{tag}-{i}").as_bytes()));
        }
    }

    pub(crate) fn note(&self) -> String {
        let tree = self.tree.lock().unwrap();
        Checkpoint {
            origin: self.key.origin().to_owned(),
            size: tree.len(),
            root: tree.root(),
        }
        .sign(&self.key)
    }
}

impl Appliance for Box_ {
    fn appliance_key(&self) -> String {
        self.key.verifier().to_string()
    }

    fn claim_code(&self) -> String {
        self.code.clone()
    }

    fn sign_link_message(&self, message: &[u8]) -> String {
        link_proto::sign_with_appliance_key(&self.key, message)
    }

    async fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, String> {
        let size = self.tree.lock().unwrap().len();
        Ok((size > 0).then(|| (size, self.note())))
    }

    async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<[u8; 32]>, String> {
        self.tree
            .lock()
            .unwrap()
            .consistency_proof(old, new)
            .ok_or_else(|| format!("no proof {old}..{new}"))
    }

    async fn keep_cosignature(&self, size: u64, line: &str) -> Result<(), String> {
        self.cosignatures
            .lock()
            .unwrap()
            .push((size, line.to_owned()));
        Ok(())
    }

    async fn devices(&self) -> Result<link_client::Snapshot, String> {
        let scores = vec![link_proto::FrameworkSummary {
            framework: "HIPAA".into(),
            permille: Some(875),
        }];
        Ok((1_764_000_100, self.devices.lock().unwrap().clone(), scores))
    }

    async fn incidents(&self) -> Result<Vec<link_proto::IncidentSummary>, String> {
        Ok(self.incidents.lock().unwrap().clone())
    }

    async fn healing_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<link_proto::HealEntry>, String> {
        Ok(self
            .healing
            .lock()
            .unwrap()
            .iter()
            .filter(|entry| entry.id > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn update_state(&self) -> Result<link_proto::UpdateSummary, String> {
        Ok(self.update.lock().unwrap().clone())
    }

    async fn offer_manifest(&self, offer: Option<(String, Vec<u8>)>) -> Result<(), String> {
        *self.offered.lock().unwrap() = offer;
        Ok(())
    }

    async fn set_partner_channels(
        &self,
        channels: Vec<link_client::PartnerChannel>,
    ) -> Result<(), String> {
        *self.channels.lock().unwrap() = channels;
        *self.channel_changes.lock().unwrap() += 1;
        Ok(())
    }

    async fn operator_actions(
        &self,
        actions: Vec<link_proto::OperatorAction>,
    ) -> Result<Vec<link_proto::SealedAction>, String> {
        let mut sealed = self.sealed.lock().unwrap();
        let mut answer = Vec::new();
        for action in actions {
            let next = 100 + sealed.len() as u64;
            answer.push(
                *sealed.entry(action.id).or_insert(link_proto::SealedAction {
                    id: action.id,
                    seq: next,
                    at: 1_764_000_500,
                }),
            );
            self.actions_seen.lock().unwrap().push(action);
        }
        answer.extend(*self.forged_report.lock().unwrap());
        Ok(answer)
    }

    async fn packets(&self) -> Result<Vec<link_client::LocalPacket>, String> {
        Ok(self.packets.lock().unwrap().clone())
    }

    async fn export_kit(&self, _dir: &std::path::Path) -> Result<(), String> {
        // Kits are exercised with real appliances (tests/appliances.rs), whose logs hold bundles.
        Err("this test appliance keeps no bundles".to_owned())
    }
}

pub(crate) fn incident(id: u64, device: &str, phase: &str) -> link_proto::IncidentSummary {
    let opened_at = 1_764_000_000 + id as i64;
    let mut transitions = Vec::new();
    if phase != "open" {
        transitions.push(link_proto::PhaseChange {
            at: opened_at + 60,
            from: "open".into(),
            to: phase.into(),
        });
    }
    link_proto::IncidentSummary {
        id,
        device: device.into(),
        check: "WIN-BITLOCKER-001".into(),
        severity: "high".into(),
        phase: phase.into(),
        opened_at,
        updated_at: opened_at + 60,
        occurrences: 1,
        flapping: false,
        acknowledged: false,
        transitions,
    }
}

pub(crate) fn heal_entry(id: i64, result: &str) -> link_proto::HealEntry {
    link_proto::HealEntry {
        id,
        at: 1_764_000_000 + id,
        device: "web1".into(),
        check: "LIN-SSH-001".into(),
        tier: "L1".into(),
        rule: Some("L1-LIN-SSH-001".into()),
        result: result.into(),
        evidence_seq: Some(id as u64 * 2),
    }
}

pub(crate) fn link(base: &str, dir: &std::path::Path, ca: &str) -> Link {
    Link::open(&base.parse().unwrap(), dir, Some(ca.as_bytes().to_vec())).unwrap()
}
