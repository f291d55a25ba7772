//! Reconciling an RMM's devices with the Active Directory inventory (pure): which machines both
//! know, which only the RMM knows (never joined, or joined to another domain: outside the
//! directory's policies), and which only the directory knows (no RMM agent: not monitored or
//! patched by the MSP). Machines are matched by host name, case-insensitively, on the first DNS
//! label (the directory's `dNSHostName`, else its account without `$`; the RMM's host name).

use std::collections::BTreeMap;

use super::RmmDevice;

/// One computer of the directory inventory, as reconciliation needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryComputer {
    /// `sAMAccountName` (`PC01$`).
    pub account: String,
    pub dns_host_name: Option<String>,
    /// `domain_controller`, `server`, `workstation` or `other`.
    pub class: String,
    pub disabled: bool,
    pub stale: bool,
}

/// Where a machine stands between the two inventories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// Known to both.
    Matched,
    /// Only the RMM knows it: not in the directory.
    RmmOnly,
    /// Only the directory knows it, and it is enabled and in use: it has no RMM agent.
    DirectoryOnly,
    /// Only the directory knows it, but it is disabled or stale (likely retired): not a gap.
    DirectoryOnlyInactive,
}

impl Standing {
    /// A stable name for evidence (`matched`, `rmm_only`, `directory_only`,
    /// `directory_only_inactive`).
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Matched => "matched",
            Standing::RmmOnly => "rmm_only",
            Standing::DirectoryOnly => "directory_only",
            Standing::DirectoryOnlyInactive => "directory_only_inactive",
        }
    }

    /// A gap someone should look at.
    pub fn is_gap(self) -> bool {
        matches!(self, Standing::RmmOnly | Standing::DirectoryOnly)
    }
}

/// One machine's line of the reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// The matching key: the host name's first label, lower case.
    pub name: String,
    pub standing: Standing,
    /// The directory account, when the directory knows it.
    pub directory_account: Option<String>,
    /// The RMM's IDs for it (several: the RMM holds duplicate records, e.g. after a re-image).
    pub rmm_ids: Vec<String>,
    /// Why it stands there, in words (empty when nothing needs saying).
    pub note: String,
}

/// The matching key of a host name: its first DNS label, lower case, without a trailing `$`.
pub fn host_key(name: &str) -> String {
    name.trim()
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_end_matches('$')
        .to_lowercase()
}

/// Reconciles the RMM's `devices` with the directory's `computers`; `domain` is the directory's
/// DNS domain, used to say why an RMM-only machine is outside it. Lines are sorted by standing
/// (matched, RMM only, directory only, inactive), then name. Devices that are not computers or
/// are retired in the RMM take no part.
pub fn reconcile(
    computers: &[DirectoryComputer],
    devices: &[RmmDevice],
    domain: Option<&str>,
) -> Vec<Reconciled> {
    let mut by_key: BTreeMap<String, Vec<&RmmDevice>> = BTreeMap::new();
    for device in devices.iter().filter(|d| d.computer && !d.retired) {
        by_key
            .entry(host_key(&device.hostname))
            .or_default()
            .push(device);
    }
    let mut lines = Vec::new();
    let mut directory_keys = std::collections::BTreeSet::new();
    for computer in computers {
        let key = computer
            .dns_host_name
            .as_deref()
            .map(host_key)
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| host_key(&computer.account));
        directory_keys.insert(key.clone());
        let found = by_key.get(&key);
        let (standing, rmm_ids, note) = match found {
            Some(found) => {
                let ids: Vec<String> = found.iter().map(|d| d.id.clone()).collect();
                let mut notes = Vec::new();
                if ids.len() > 1 {
                    notes.push(format!(
                        "the RMM holds {} records of this name (a re-imaged or renamed machine?)",
                        ids.len()
                    ));
                }
                if computer.disabled && found.iter().any(|d| d.online == Some(true)) {
                    notes.push("disabled in the directory but online in the RMM".to_owned());
                }
                (Standing::Matched, ids, notes.join("; "))
            }
            None if computer.disabled || computer.stale => (
                Standing::DirectoryOnlyInactive,
                Vec::new(),
                if computer.disabled {
                    "disabled in the directory".to_owned()
                } else {
                    "no logon in the directory's stale period".to_owned()
                },
            ),
            None => (
                Standing::DirectoryOnly,
                Vec::new(),
                format!("a {} with no RMM agent", class_words(&computer.class)),
            ),
        };
        lines.push(Reconciled {
            name: key,
            standing,
            directory_account: Some(computer.account.clone()),
            rmm_ids,
            note,
        });
    }
    for (key, found) in &by_key {
        if directory_keys.contains(key) {
            continue;
        }
        let domains: Vec<&str> = found.iter().filter_map(|d| d.domain.as_deref()).collect();
        let note = match (domains.first(), domain) {
            (None, _) => "not in the directory".to_owned(),
            (Some(d), Some(ours)) if same_domain(d, ours) => {
                "not in the directory, though its agent reports this domain (deleted computer object?)".to_owned()
            }
            (Some(d), _) if d.eq_ignore_ascii_case("workgroup") => {
                "not joined to the domain (workgroup)".to_owned()
            }
            (Some(d), _) => format!("not in the directory: its agent reports domain {d}"),
        };
        lines.push(Reconciled {
            name: key.clone(),
            standing: Standing::RmmOnly,
            directory_account: None,
            rmm_ids: found.iter().map(|d| d.id.clone()).collect(),
            note,
        });
    }
    lines.sort_by(|a, b| (a.standing, &a.name).cmp(&(b.standing, &b.name)));
    lines
}

/// `reported` (a NetBIOS name or a DNS domain) names `ours` (a DNS domain).
fn same_domain(reported: &str, ours: &str) -> bool {
    reported.eq_ignore_ascii_case(ours)
        || ours
            .split('.')
            .next()
            .is_some_and(|label| label.eq_ignore_ascii_case(reported))
}

fn class_words(class: &str) -> &str {
    match class {
        "domain_controller" => "domain controller",
        "server" => "server",
        "workstation" => "workstation",
        _ => "computer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn computer(
        account: &str,
        dns: Option<&str>,
        disabled: bool,
        stale: bool,
    ) -> DirectoryComputer {
        DirectoryComputer {
            account: account.to_owned(),
            dns_host_name: dns.map(str::to_owned),
            class: "workstation".to_owned(),
            disabled,
            stale,
        }
    }

    fn device(id: &str, hostname: &str, domain: Option<&str>) -> RmmDevice {
        RmmDevice {
            id: id.to_owned(),
            hostname: hostname.to_owned(),
            domain: domain.map(str::to_owned),
            operating_system: None,
            device_type: None,
            ip_address: None,
            last_seen: None,
            online: Some(true),
            computer: true,
            retired: false,
        }
    }

    #[test]
    fn each_machine_lands_on_one_line() {
        let computers = [
            computer("FRONT-01$", Some("front-01.clinic.example"), false, false),
            computer("EXAM-02$", Some("EXAM-02.clinic.example"), false, false),
            computer("OLD-03$", None, true, false),
            computer("DUSTY-04$", None, false, true),
            computer(
                "NOAGENT-05$",
                Some("noagent-05.clinic.example"),
                false,
                false,
            ),
        ];
        let mut printer = device("p1", "LOBBY-PRINTER", None);
        printer.computer = false;
        let mut gone = device("g1", "GONE-06", Some("CLINIC"));
        gone.retired = true;
        let devices = [
            device("d1", "FRONT-01", Some("CLINIC")),
            device("d2", "exam-02", Some("CLINIC")),
            device("d3", "exam-02", Some("CLINIC")),
            device("d4", "HOME-LAPTOP", Some("WORKGROUP")),
            device("d5", "GHOST-07", Some("clinic.example")),
            printer,
            gone,
        ];
        let lines = reconcile(&computers, &devices, Some("clinic.example"));
        let shown: Vec<String> = lines
            .iter()
            .map(|l| {
                format!(
                    "{} {} {:?} {:?} {}",
                    l.standing.as_str(),
                    l.name,
                    l.directory_account,
                    l.rmm_ids,
                    l.note
                )
            })
            .collect();
        expect_test::expect![[r#"
            [
                "matched exam-02 Some(\"EXAM-02$\") [\"d2\", \"d3\"] the RMM holds 2 records of this name (a re-imaged or renamed machine?)",
                "matched front-01 Some(\"FRONT-01$\") [\"d1\"] ",
                "rmm_only ghost-07 None [\"d5\"] not in the directory, though its agent reports this domain (deleted computer object?)",
                "rmm_only home-laptop None [\"d4\"] not joined to the domain (workgroup)",
                "directory_only noagent-05 Some(\"NOAGENT-05$\") [] a workstation with no RMM agent",
                "directory_only_inactive dusty-04 Some(\"DUSTY-04$\") [] no logon in the directory's stale period",
                "directory_only_inactive old-03 Some(\"OLD-03$\") [] disabled in the directory",
            ]
        "#]]
        .assert_debug_eq(&shown);
    }

    #[test]
    fn keys_ignore_case_domain_and_dollar() {
        assert_eq!(host_key("PC01$"), "pc01");
        assert_eq!(host_key("pc01.clinic.example"), "pc01");
        assert_eq!(host_key(" PC01 "), "pc01");
    }
}
