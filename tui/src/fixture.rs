//! Recorded daemon answers for a realistic 30-device clinic, used by the tests and by
//! `--bench-startup` (not part of the console's behaviour).

use std::sync::Mutex;

use api::*;

use crate::action::{Action, Failure};
use crate::model::Model;
use crate::runtime::{Daemon, Request};
use crate::update::update;

/// The daemon's clock in every recorded answer (2026-01-15 15:20 UTC).
pub const NOW: i64 = 1_768_490_400;

/// `GET /v1/status` of the clinic: 30 devices, 2 drifted, one escalated incident.
pub fn status() -> Status {
    Status {
        site: "Lakeside Family Clinic".into(),
        version: "0.9.2".into(),
        now: NOW,
        started_at: NOW - 3 * 86_400 - 4 * 3600,
        setup_complete: true,
        devices: DeviceCounts {
            total: 30,
            checked: 30,
            compliant: 28,
            drifted: 2,
            errored: 0,
            by_class: vec![
                ClassCount {
                    class: DeviceClass::WindowsServer,
                    total: 3,
                    compliant: 2,
                    drifted: 1,
                    errored: 0,
                },
                ClassCount {
                    class: DeviceClass::Workstation,
                    total: 24,
                    compliant: 23,
                    drifted: 1,
                    errored: 0,
                },
                ClassCount {
                    class: DeviceClass::Linux,
                    total: 3,
                    compliant: 3,
                    drifted: 0,
                    errored: 0,
                },
            ],
        },
        last_scan_at: Some(NOW - 180),
        cycles: vec![
            cycle(
                CycleKind::ServerScan,
                96,
                "6 devices scanned, 1 drifted, 1 fixed",
                900,
            ),
            cycle(
                CycleKind::WorkstationScan,
                40,
                "24 workstations scanned, 1 drifted",
                2400,
            ),
            cycle(
                CycleKind::Discovery,
                12,
                "24 computers in Active Directory",
                20_000,
            ),
            cycle(
                CycleKind::Anchor,
                70,
                "2 checkpoints submitted, 1 upgraded",
                1800,
            ),
            cycle(
                CycleKind::Checkpoint,
                72,
                "checkpoint at 4,812 records",
                3000,
            ),
        ],
        healing: HealingState::default(),
        incidents: IncidentCounts {
            open: 1,
            healing: 1,
            escalated: 1,
            needs_you: 1,
            resolved: 9,
        },
        compliance: vec![
            score("HIPAA", 412, 9, &[951, 955, 960, 958, 962, 970, 975, 978]),
            score("SOC 2", 301, 7, &[940, 944, 950, 953, 961, 966, 970, 977]),
            score("PCI DSS", 188, 8, &[930, 931, 936, 940, 944, 950, 955, 959]),
            score(
                "NIST CSF",
                377,
                11,
                &[950, 952, 949, 955, 960, 962, 965, 971],
            ),
            score("CIS", 520, 19, &[940, 942, 945, 950, 955, 960, 962, 964]),
        ],
        evidence: EvidenceState {
            bundles: 4_812,
            head_hash: Some(
                "9f2c41d07be35a18c6e0f4d2b7a9135e8c0d6f2a4b1e7c39d5a08f6e2b4c7d1a".into(),
            ),
            last_checkpoint_at: Some(NOW - 600),
            checkpoint_size: 4_790,
            ots_pending: 2,
            ots_anchored: 68,
            key_id: "ed25519:4b1e7c39d5a08f6e".into(),
            last_packet: packets().into_iter().next(),
        },
        health: ApplianceHealth {
            uptime_secs: 3 * 86_400 + 4 * 3600,
            disk_free_bytes: 41 * 1024 * 1024 * 1024,
            disk_total_bytes: 64 * 1024 * 1024 * 1024,
            mem_total_bytes: 8 * 1024 * 1024 * 1024,
            mem_available_bytes: 5 * 1024 * 1024 * 1024,
            addresses: vec!["192.168.10.40/24".into()],
            support_code: "LAKE-7Q4M".into(),
            update: UpdateState {
                current: "0.9.2".into(),
                available: Some("0.9.3".into()),
                state: "staged".into(),
                detail: Some("Signed by OsirisCare release key 2026-A.".into()),
                can_apply: true,
                can_roll_back: false,
            },
        },
        console: ConsoleLock {
            pin_set: true,
            lock_after_secs: 300,
        },
    }
}

/// `GET /v1/targets` of the clinic: 3 servers, 24 workstations, 3 Linux hosts.
pub fn devices() -> Vec<Device> {
    let mut res = vec![
        device("DC1", DeviceClass::WindowsServer, "192.168.10.5", 48, &[]),
        device(
            "FS1",
            DeviceClass::WindowsServer,
            "192.168.10.6",
            48,
            &[(
                "win.smb.signing_required",
                "SMB signing is not required",
                "high",
            )],
        ),
        device(
            "EHR-APP",
            DeviceClass::WindowsServer,
            "192.168.10.7",
            48,
            &[],
        ),
    ];
    for idx in 1..=24 {
        let name = match idx {
            1..=4 => format!("FRONT-DESK-{idx:02}"),
            5..=16 => format!("EXAM-{:02}", idx - 4),
            _ => format!("OFFICE-{:02}", idx - 16),
        };
        let failing: &[(&str, &str, &str)] = if idx == 7 {
            &[(
                "win.screen_lock.timeout",
                "Screen does not lock after 15 minutes",
                "medium",
            )]
        } else {
            &[]
        };
        res.push(device(
            &name,
            DeviceClass::Workstation,
            &format!("192.168.10.{}", 100 + idx),
            31,
            failing,
        ));
    }
    for (name, last_octet) in [("backup-nas", 20), ("pacs-gw", 21), ("fw-edge", 1)] {
        res.push(device(
            name,
            DeviceClass::Linux,
            &format!("192.168.10.{last_octet}"),
            36,
            &[],
        ));
    }
    res
}

/// `GET /v1/incidents`: one escalated (needs a person), one being fixed, one resolved.
pub fn incidents() -> Vec<Incident> {
    vec![
        Incident {
            id: 41,
            target: "FS1".into(),
            check: "win.smb.signing_required".into(),
            title: "SMB signing is not required".into(),
            severity: "high".into(),
            phase: "escalated".into(),
            opened_at: NOW - 2 * 3600,
            updated_at: NOW - 3600,
            occurrences: 3,
            flapping: true,
            acknowledged: false,
            needs_human: true,
            history: vec![
                "Found during the 13:20 scan.".into(),
                "Turned SMB signing on (runbook RB-WIN-SMB-01).".into(),
                "It was off again at the next scan: a Group Policy turns it back off.".into(),
                "Sent to your IT partner by email at 14:20.".into(),
            ],
        },
        Incident {
            id: 42,
            target: "EXAM-03".into(),
            check: "win.screen_lock.timeout".into(),
            title: "Screen does not lock after 15 minutes".into(),
            severity: "medium".into(),
            phase: "healing".into(),
            opened_at: NOW - 900,
            updated_at: NOW - 300,
            occurrences: 1,
            flapping: false,
            acknowledged: false,
            needs_human: false,
            history: vec![
                "Found during the 15:05 scan.".into(),
                "Setting the screen lock to 10 minutes (runbook RB-WIN-LOCK-01).".into(),
            ],
        },
        Incident {
            id: 37,
            target: "backup-nas".into(),
            check: "linux.ssh.password_auth".into(),
            title: "SSH accepts passwords".into(),
            severity: "high".into(),
            phase: "resolved".into(),
            opened_at: NOW - 86_400,
            updated_at: NOW - 86_000,
            occurrences: 1,
            flapping: false,
            acknowledged: false,
            needs_human: false,
            history: vec![
                "Found during the morning scan.".into(),
                "Turned password login off and restarted SSH (runbook RB-LNX-SSH-02).".into(),
                "The next scan confirmed it is fixed.".into(),
            ],
        },
    ]
}

/// `GET /v1/healing`: newest first.
pub fn healing() -> Vec<HealingEntry> {
    let entry = |ago: i64, target: &str, check: &str, result: &str, reason: &str| HealingEntry {
        at: NOW - ago,
        target: target.into(),
        check: check.into(),
        runbook: Some("RB".into()),
        tier: "L1".into(),
        result: result.into(),
        reason: reason.into(),
        evidence_seq: Some(4_000),
    };
    vec![
        entry(
            300,
            "EXAM-03",
            "win.screen_lock",
            "fixed",
            "Screen lock set to 10 minutes",
        ),
        entry(
            3600,
            "FS1",
            "win.smb.signing",
            "escalated",
            "Came back after fixing: a Group Policy resets it",
        ),
        entry(
            7200,
            "FS1",
            "win.smb.signing",
            "fixed",
            "SMB signing turned on",
        ),
        entry(
            20_000,
            "OFFICE-02",
            "win.firewall",
            "fixed",
            "Windows Firewall turned back on",
        ),
        entry(
            86_000,
            "backup-nas",
            "linux.ssh.password",
            "fixed",
            "Password login over SSH turned off",
        ),
        entry(
            90_000,
            "pacs-gw",
            "linux.auditd",
            "not_fixed",
            "auditd is not installed; needs a person",
        ),
    ]
}

/// `GET /v1/setup` on a new appliance: two ports, nothing saved yet.
pub fn setup_state() -> SetupState {
    SetupState {
        complete: false,
        interfaces: vec![
            Interface {
                name: "enp1s0".into(),
                mac: Some("52:54:00:12:34:56".into()),
                up: true,
                addresses: vec!["192.168.10.40/24".into()],
            },
            Interface {
                name: "enp2s0".into(),
                mac: Some("52:54:00:65:43:21".into()),
                up: false,
                addresses: Vec::new(),
            },
        ],
        network: None,
        claim: ClaimInfo {
            code: "K7QF-3MZP".into(),
            url: "https://central.osiris.care/claim/K7QF-3MZP".into(),
            claimed_with: None,
        },
        directory: None,
        credentials: Vec::new(),
        timezone: "UTC".into(),
        pin_set: false,
    }
}

/// Status of a new appliance before setup: nothing scanned.
pub fn fresh_status() -> Status {
    let mut res = status();
    res.setup_complete = false;
    res.console.pin_set = false;
    res.devices = DeviceCounts::default();
    res.last_scan_at = None;
    res.incidents = IncidentCounts::default();
    res.compliance.iter_mut().for_each(|s| {
        s.permille = None;
        s.trend.clear();
        s.passing = 0;
        s.failing = 0;
    });
    res.evidence = EvidenceState {
        key_id: "ed25519:4b1e7c39d5a08f6e".into(),
        ..EvidenceState::default()
    };
    for cycle in &mut res.cycles {
        cycle.runs = 0;
        cycle.last_outcome = None;
        cycle.last_finished_at = None;
        cycle.last_started_at = None;
    }
    res.health.update = UpdateState {
        current: "0.9.2".into(),
        available: None,
        state: "idle".into(),
        detail: None,
        can_apply: false,
        can_roll_back: false,
    };
    res
}

/// Where the clinic's agents connect: the appliance's address and the gateway's port.
pub const AGENT_GATEWAY: &str = "192.168.10.40:7443";

/// The clinic's agent CA pin.
pub const AGENT_CA_PIN: &str =
    "sha256:5f3c9a1be2d4477c8e0a6b19d3f2c5e7a9b1c3d5e7f90a1b2c3d4e5f60718293";

/// `GET /v1/agents` of the clinic: six agents, connected, quiet, silent for days, never
/// reported and revoked.
pub fn agents() -> AgentsState {
    let agent = |id: &str, hostname: &str, platform: &str, os: &str, connected: bool| AgentView {
        agent_id: format!("a-{id}"),
        hostname: hostname.into(),
        platform: platform.into(),
        os: os.into(),
        agent_version: "0.4.0".into(),
        enrolled_at: NOW - 21 * 86_400,
        revoked_at: None,
        connected,
        last_seen_at: Some(NOW - 20),
        stored_seq: 18_240,
        queue_items: 0,
        clock_skew_ms: 120,
        certificate_expires_at: NOW + 5 * 86_400,
    };
    let windows = "Windows 11 Pro 23H2";
    AgentsState {
        gateway: Some(AGENT_GATEWAY.into()),
        ca_pin: Some(AGENT_CA_PIN.into()),
        agents: vec![
            agent(
                "3f9c2e71d04a8b65",
                "FRONT-DESK-01",
                "windows-x86_64",
                windows,
                true,
            ),
            AgentView {
                last_seen_at: Some(NOW - 12 * 60),
                stored_seq: 9_311,
                ..agent(
                    "8a17d5c2e9f03b46",
                    "EXAM-03",
                    "windows-x86_64",
                    windows,
                    false,
                )
            },
            AgentView {
                queue_items: 3,
                clock_skew_ms: -7_400,
                ..agent(
                    "c2e8b4f617a95d30",
                    "backup-nas",
                    "linux-x86_64",
                    "Debian GNU/Linux 12",
                    true,
                )
            },
            AgentView {
                last_seen_at: Some(NOW - 4 * 86_400),
                stored_seq: 2_002,
                ..agent(
                    "51d9a3e7c0b6f284",
                    "RECEPTION-02",
                    "windows-x86_64",
                    windows,
                    false,
                )
            },
            AgentView {
                enrolled_at: NOW - 300,
                last_seen_at: None,
                stored_seq: 0,
                certificate_expires_at: NOW - 300 + 7 * 86_400,
                ..agent(
                    "e6b0f7293c4d18a5",
                    "BILLING-01",
                    "windows-x86_64",
                    "Windows 10 Pro 22H2",
                    false,
                )
            },
            AgentView {
                revoked_at: Some(NOW - 2 * 86_400),
                last_seen_at: Some(NOW - 3 * 86_400),
                ..agent(
                    "94a2c8e15f7b3d06",
                    "DR-PATEL-LAPTOP",
                    "windows-x86_64",
                    windows,
                    false,
                )
            },
        ],
    }
}

/// The enrollment token the recorded daemon makes.
pub fn agent_token(uses: u32, expires_secs: u64) -> AgentToken {
    AgentToken {
        token: "osat_k3v7q2mx9d4hr6tj5wbn8yc2pzf7la3e4gs5uqd".into(),
        id: "t-m4qz7k2a".into(),
        uses,
        expires_at: NOW + expires_secs as i64,
        gateway: AGENT_GATEWAY.into(),
        ca_pin: AGENT_CA_PIN.into(),
    }
}

/// `GET /v1/l2/pending` of the clinic: the assistant proposes to turn the firewall back on at
/// the front desk, a runbook the catalogue marks as needing a person.
pub fn l2_plans() -> Vec<L2Plan> {
    vec![L2Plan {
        id: "l2-4812".into(),
        target: "FRONTDESK-01".into(),
        check: "WIN-FW-001".into(),
        runbook: "WIN-FW-001".into(),
        params: Default::default(),
        confidence: 0.86,
        rationale:
            "The domain profile of the firewall is off; turning it on restores the baseline.".into(),
        at: NOW - 1_800,
    }]
}

/// `GET /v1/flywheel` of the clinic: one learned fix ready to become automatic, one automatic,
/// one still learning; 30 days of resolutions.
pub fn flywheel() -> FlywheelState {
    let pattern =
        |id: &str, check: &str, successes: u32, attempts: u32, hosts: u32, standing: &str| {
            FlywheelPattern {
                id: id.into(),
                check: check.into(),
                runbook: check.into(),
                successes,
                attempts,
                hosts,
                standing: standing.into(),
                proposed_rule: (standing == "proposed")
                    .then(|| "[[rule]]\nid = \"L1-FLY-3f2a9c1d0e\"\n".into()),
                in_effect: standing == "promoted",
            }
        };
    FlywheelState {
        patterns: vec![
            pattern("fw-3f2a9c1d0e", "LIN-SSH-001", 6, 6, 3, "proposed"),
            pattern("fw-91b0e2d7a4", "WIN-SMB-001", 12, 12, 5, "promoted"),
            pattern("fw-0c7d5e3b21", "LIN-NTP-001", 2, 3, 1, "learning"),
        ],
        tiers: (0..30)
            .map(|d| TierDay {
                day: NOW / 86_400 - 29 + d,
                l1: 7,
                l2: 2,
                l3: 1,
            })
            .collect(),
    }
}

/// The clinic's console PIN in the recorded answers.
pub const PIN: &str = "2468";

/// The unlock token the recorded daemon gives for [`PIN`].
pub fn unlocked() -> Unlocked {
    Unlocked {
        token: "0123456789abcdef".into(),
        expires_after_secs: 300,
    }
}

/// A console that has loaded the clinic's status, been unlocked with the PIN and loaded the
/// lists, at `size`.
/// The monthly packets the daemon made, newest first.
pub fn packets() -> Vec<api::PacketState> {
    vec![
        api::PacketState {
            period: "2025-12".into(),
            made_at: NOW - 14 * 86_400,
            seq: 4_101,
            files: 26,
            evidence: true,
        },
        api::PacketState {
            period: "2025-11".into(),
            made_at: NOW - 45 * 86_400,
            seq: 2_977,
            files: 26,
            evidence: false,
        },
    ]
}

/// The exceptions and attestations with their expiry.
pub fn records() -> api::ComplianceRecords {
    api::ComplianceRecords {
        exceptions: vec![api::ExceptionRecord {
            check: "LIN-SSH-002".into(),
            target: "pacs-01".into(),
            reason: "Vendor appliance, password login required by the vendor".into(),
            owner: "Dr. Ada Example".into(),
            expires: "2026-03-31".into(),
            counts: true,
            seq: 3_960,
        }],
        attestations: vec![
            api::AttestationRecord {
                control: "HIPAA 164.308(a)(1)(ii)(A)".into(),
                statement: "Risk analysis reviewed with the MSP".into(),
                by: "Dr. Ada Example, owner".into(),
                expires: "2026-06-30".into(),
                counts: true,
                seq: 3_961,
            },
            api::AttestationRecord {
                control: "HIPAA 164.308(a)(5)(i)".into(),
                statement: "Security awareness training done".into(),
                by: "Office manager".into(),
                expires: "2026-01-10".into(),
                counts: false,
                seq: 1_204,
            },
        ],
    }
}

pub fn loaded_model(size: (u16, u16)) -> Model {
    let mut model = Model::new(size);
    for action in [
        Action::StatusLoaded(Ok(status())),
        Action::Unlocked(Ok(unlocked())),
        Action::DevicesLoaded(Ok(devices())),
        Action::IncidentsLoaded(Ok(incidents())),
        Action::HealingLoaded(Ok(healing())),
        Action::AgentsLoaded(Ok(agents())),
        Action::PacketsLoaded(Ok(packets())),
        Action::RecordsLoaded(Ok(records())),
    ] {
        update(&mut model, action);
    }
    model
}

/// A [`Daemon`] that answers from the recorded clinic data and logs every call.
#[derive(Debug, Default)]
pub struct Recorded {
    /// When set, every call fails as if the service were stopped.
    pub down: bool,
    /// Calls made, in order, by their API path.
    pub calls: Mutex<Vec<String>>,
}

impl Recorded {
    /// The recorded answer to `method path` with `body`, as the daemon would encode it.
    fn answer(&self, method: Method, path: &str, body: &[u8]) -> Result<Vec<u8>, String> {
        let bad = |err: serde_json::Error| format!("bad request body: {err}");
        let route = path.split('?').next().unwrap_or(path);
        if let Some(id) = route
            .strip_prefix("/v1/incidents/")
            .and_then(|rest| rest.strip_suffix("/ack"))
        {
            let id: u64 = id.parse().map_err(|_| format!("bad incident id `{id}`"))?;
            let mut incident = incidents()
                .into_iter()
                .find(|i| i.id == id)
                .unwrap_or_else(|| incidents().remove(0));
            incident.acknowledged = true;
            return serde_json::to_vec(&incident).map_err(|err| err.to_string());
        }
        let answer = match (method, route) {
            (Method::Get, "/v1/status") => serde_json::to_vec(&status()),
            (Method::Get, "/v1/setup") => serde_json::to_vec(&setup_state()),
            (Method::Get, "/v1/targets") => serde_json::to_vec(&devices()),
            (Method::Get, "/v1/incidents") => serde_json::to_vec(&incidents()),
            (Method::Get, "/v1/healing") => serde_json::to_vec(&healing()),
            (Method::Post, "/v1/scan") => serde_json::to_vec(&Triggered {
                cycle: CycleKind::ServerScan,
                queued: false,
                message: "Scanning 6 devices.".into(),
            }),
            (Method::Post, "/v1/healing/pause") => {
                let pause: PauseRequest = serde_json::from_slice(body).map_err(bad)?;
                serde_json::to_vec(&HealingState {
                    paused: true,
                    paused_reason: Some(pause.reason),
                    paused_by: Some(pause.by),
                    paused_at: Some(NOW),
                    maintenance: Vec::new(),
                })
            }
            (Method::Post, "/v1/healing/resume") => serde_json::to_vec(&HealingState::default()),
            (Method::Post, "/v1/evidence/export") => {
                let export: ExportRequest = serde_json::from_slice(body).map_err(bad)?;
                serde_json::to_vec(&ExportResult {
                    path: format!("{}/osiris-evidence-2026-01-15", export.dest_dir),
                    bundles: 4_812,
                    bytes: 9_400_000,
                })
            }
            (Method::Post, "/v1/setup/directory/test") => {
                let directory: DirectoryRequest = serde_json::from_slice(body).map_err(bad)?;
                serde_json::to_vec(&ConnectionTest {
                    ok: false,
                    message: format!("The password for {} is wrong", directory.bind_user),
                    detail: Some("LDAP 49: 80090308: LdapErr: DSID-0C09044E, data 52e".into()),
                })
            }
            (
                Method::Post,
                "/v1/setup/network"
                | "/v1/setup/claim"
                | "/v1/setup/directory"
                | "/v1/setup/credentials"
                | "/v1/setup/timezone",
            ) => serde_json::to_vec(&setup_state()),
            (Method::Post, "/v1/console/unlock") => {
                let unlock: UnlockRequest = serde_json::from_slice(body).map_err(bad)?;
                if unlock.pin != PIN {
                    return Err("wrong PIN: wait 4 s before trying again".into());
                }
                serde_json::to_vec(&unlocked())
            }
            (Method::Get, "/v1/agents") => serde_json::to_vec(&agents()),
            (Method::Post, "/v1/agents/tokens") => {
                let request: AgentTokenRequest = serde_json::from_slice(body).map_err(bad)?;
                serde_json::to_vec(&agent_token(request.uses, request.expires_secs))
            }
            (Method::Post, "/v1/agents/revoke") => {
                let request: AgentRevokeRequest = serde_json::from_slice(body).map_err(bad)?;
                let Some(mut agent) = agents()
                    .agents
                    .into_iter()
                    .find(|a| a.agent_id == request.agent_id && a.revoked_at.is_none())
                else {
                    return Err(format!(
                        "no enrolled, unrevoked agent has the ID {:?} (`osiris agent list` shows the agents and their IDs)",
                        request.agent_id
                    ));
                };
                agent.revoked_at = Some(NOW);
                agent.connected = false;
                serde_json::to_vec(&agent)
            }
            (Method::Get, "/v1/l2/pending") => serde_json::to_vec(&l2_plans()),
            (Method::Get, "/v1/compliance/packets") => serde_json::to_vec(&packets()),
            (Method::Get, "/v1/compliance/records") => serde_json::to_vec(&records()),
            (Method::Post, "/v1/compliance/packets/export") => {
                let export: api::PacketExportRequest = serde_json::from_slice(body).map_err(bad)?;
                serde_json::to_vec(&api::PacketExportResult {
                    path: format!(
                        "{}/osiris-packet-lakeside-{}-1768435200",
                        export.dest_dir, export.period
                    ),
                    files: 26,
                    bytes: 9_100_000,
                })
            }
            (Method::Get, "/v1/flywheel") => serde_json::to_vec(&flywheel()),
            (Method::Post, path) if path.starts_with("/v1/l2/pending/") => {
                let request: DecisionRequest = serde_json::from_slice(body).map_err(bad)?;
                let plan = l2_plans().remove(0);
                let approved = path.ends_with("/approve");
                if !request.by.trim().is_empty() && path.contains(&plan.id) {
                    serde_json::to_vec(&L2Decided {
                        id: plan.id,
                        approved,
                        action_seq: 4_913,
                        outcome: approved.then(|| "fixed".into()),
                        target: plan.target,
                        check: plan.check,
                        heal_seq: approved.then_some(4_914),
                    })
                } else {
                    return Err(format!("no L2 plan waits at {path}"));
                }
            }
            (Method::Post, path) if path.starts_with("/v1/flywheel/") => {
                let _: DecisionRequest = serde_json::from_slice(body).map_err(bad)?;
                serde_json::to_vec(&FlywheelDecided {
                    id: "fw-3f2a9c1d0e".into(),
                    decision: if path.ends_with("/approve") {
                        "approved"
                    } else {
                        "rejected"
                    }
                    .into(),
                    action_seq: 4_915,
                    rules_in_effect: 61,
                })
            }
            (Method::Post, "/v1/setup/pin") => serde_json::to_vec(&SetupState {
                pin_set: true,
                ..setup_state()
            }),
            (Method::Post, "/v1/setup/complete") => serde_json::to_vec(&SetupState {
                complete: true,
                ..setup_state()
            }),
            (method, path) => {
                return Err(format!("no recorded answer to {} {path}", method.as_str()));
            }
        };
        answer.map_err(|err| err.to_string())
    }
}

impl Daemon for Recorded {
    fn send(&self, request: &Request) -> Result<Vec<u8>, Failure> {
        let route = request.path.split('?').next().unwrap_or(&request.path);
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(format!("{} {route}", request.method.as_str()));
        }
        if self.down {
            return Err(Failure::down("The appliance service is not running"));
        }
        self.answer(
            request.method,
            &request.path,
            request.body.as_deref().unwrap_or_default(),
        )
        .map_err(Failure::refused)
    }
}

fn cycle(kind: CycleKind, runs: u64, outcome: &str, every: i64) -> CycleState {
    CycleState {
        kind,
        enabled: true,
        running: false,
        runs,
        last_started_at: Some(NOW - 240),
        last_finished_at: Some(NOW - 180),
        last_outcome: Some(outcome.into()),
        last_failed: false,
        next_due_at: Some(NOW - 180 + every),
    }
}

fn score(framework: &str, passing: u32, failing: u32, trend: &[u32]) -> FrameworkScore {
    FrameworkScore {
        framework: framework.into(),
        passing,
        failing,
        controls: passing + failing,
        permille: Some(passing * 1000 / (passing + failing)),
        trend: trend.to_vec(),
    }
}

fn device(
    name: &str,
    class: DeviceClass,
    address: &str,
    checks_total: u32,
    failing: &[(&str, &str, &str)],
) -> Device {
    let platform = match class {
        DeviceClass::WindowsServer => "windows-server",
        DeviceClass::Workstation => "windows-workstation",
        DeviceClass::Linux => "linux",
    };
    Device {
        name: name.into(),
        class,
        platform: platform.into(),
        address: Some(address.into()),
        status: if failing.is_empty() {
            DeviceStatus::Compliant
        } else {
            DeviceStatus::Drifted
        },
        last_scan_at: Some(NOW - 180),
        checks_total,
        checks_failed: failing.len() as u32,
        failing: failing
            .iter()
            .map(|(check, title, severity)| FailingCheck {
                check: (*check).into(),
                title: (*title).into(),
                severity: (*severity).into(),
            })
            .collect(),
        error: None,
        intune: None,
    }
}
