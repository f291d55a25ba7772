//! A site's one-word verdict and the reasons behind it: pure, so the overview's order (worst
//! first) is tested without a database.

use crate::scope::SiteSummary;

/// A site's state in one word, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// A person must act: escalated incidents, or the witness refused a fork of history.
    Critical,
    /// An appliance has not reported for a while: nothing on the page is current.
    Offline,
    /// Something is drifting: open incidents, failing devices, unchecked workstations, HIPAA
    /// below 90 %, an update not applied.
    Attention,
    /// No appliance claimed yet.
    Unclaimed,
    /// Nothing needs anyone.
    Healthy,
}

impl Verdict {
    /// The word shown.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Critical => "Critical",
            Verdict::Offline => "Offline",
            Verdict::Attention => "Attention",
            Verdict::Unclaimed => "Unclaimed",
            Verdict::Healthy => "Healthy",
        }
    }

    /// The CSS class and filter value.
    pub fn key(self) -> &'static str {
        match self {
            Verdict::Critical => "critical",
            Verdict::Offline => "offline",
            Verdict::Attention => "attention",
            Verdict::Unclaimed => "unclaimed",
            Verdict::Healthy => "healthy",
        }
    }

    /// From a filter value.
    pub fn parse(key: &str) -> Option<Verdict> {
        ALL.into_iter().find(|v| v.key() == key)
    }
}

/// Every verdict, worst first.
pub const ALL: [Verdict; 5] = [
    Verdict::Critical,
    Verdict::Offline,
    Verdict::Attention,
    Verdict::Unclaimed,
    Verdict::Healthy,
];

/// HIPAA compliance below this (tenths of a percent) needs attention.
pub const HIPAA_ATTENTION_BELOW: i64 = 900;

/// The verdict of a site and, in words, why.
pub fn judge(site: &SiteSummary) -> (Verdict, Vec<String>) {
    let mut reasons = Vec::new();
    let plural = |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    if site.appliances == 0 {
        return (
            Verdict::Unclaimed,
            vec!["no appliance claimed yet".to_owned()],
        );
    }
    if site.forks > 0 {
        reasons.push(plural(
            site.forks,
            "rewritten evidence log refused",
            "rewritten evidence logs refused",
        ));
    }
    if site.escalated > 0 {
        reasons.push(plural(
            site.escalated,
            "incident needs a person",
            "incidents need a person",
        ));
    }
    if !reasons.is_empty() {
        return (Verdict::Critical, reasons);
    }
    if site.offline > 0 {
        return (
            Verdict::Offline,
            vec![plural(
                site.offline,
                "appliance not reporting",
                "appliances not reporting",
            )],
        );
    }
    if site.open_incidents > 0 {
        reasons.push(plural(
            site.open_incidents,
            "open incident",
            "open incidents",
        ));
    }
    if site.devices_failing > 0 {
        reasons.push(plural(
            site.devices_failing,
            "device not compliant",
            "devices not compliant",
        ));
    }
    let unchecked = site.workstations_known - site.workstations_checked;
    if unchecked > 0 {
        reasons.push(plural(
            unchecked,
            "workstation not checked",
            "workstations not checked",
        ));
    }
    if let Some(Some(hipaa)) = site.compliance.get("HIPAA")
        && *hipaa < HIPAA_ATTENTION_BELOW
    {
        reasons.push(format!("HIPAA at {}", super::percent(Some(*hipaa))));
    }
    if site.not_updated > 0 {
        reasons.push(plural(
            site.not_updated,
            "appliance not updated",
            "appliances not updated",
        ));
    }
    if reasons.is_empty() {
        (Verdict::Healthy, Vec::new())
    } else {
        (Verdict::Attention, reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(edit: impl FnOnce(&mut SiteSummary)) -> SiteSummary {
        let mut site = SiteSummary {
            id: 1,
            practice: "Family Practice".into(),
            name: "Main".into(),
            appliances: 1,
            offline: 0,
            last_seen: None,
            not_updated: 0,
            forks: 0,
            escalated: 0,
            open_incidents: 0,
            devices: 10,
            devices_failing: 0,
            workstations_known: 8,
            workstations_checked: 8,
            compliance: [("HIPAA".to_owned(), Some(950))].into(),
            observed_at: None,
        };
        edit(&mut site);
        site
    }

    #[test]
    fn each_condition_gives_its_verdict_and_says_why() {
        let cases: Vec<(SiteSummary, Verdict, &str)> = vec![
            (site(|_| {}), Verdict::Healthy, ""),
            (
                site(|s| s.appliances = 0),
                Verdict::Unclaimed,
                "no appliance claimed yet",
            ),
            (
                site(|s| s.escalated = 2),
                Verdict::Critical,
                "2 incidents need a person",
            ),
            (
                site(|s| s.forks = 1),
                Verdict::Critical,
                "1 rewritten evidence log refused",
            ),
            (
                site(|s| s.offline = 1),
                Verdict::Offline,
                "1 appliance not reporting",
            ),
            (
                site(|s| s.open_incidents = 1),
                Verdict::Attention,
                "1 open incident",
            ),
            (
                site(|s| s.workstations_checked = 5),
                Verdict::Attention,
                "3 workstations not checked",
            ),
            (
                site(|s| s.compliance = [("HIPAA".to_owned(), Some(855))].into()),
                Verdict::Attention,
                "HIPAA at 85.5\u{a0}%",
            ),
            (
                site(|s| s.not_updated = 1),
                Verdict::Attention,
                "1 appliance not updated",
            ),
            // Critical outranks offline: an escalation needs a person even if the box is quiet.
            (
                site(|s| {
                    s.escalated = 1;
                    s.offline = 1
                }),
                Verdict::Critical,
                "1 incident needs a person",
            ),
        ];
        for (site, verdict, reason) in cases {
            let (got, reasons) = judge(&site);
            assert_eq!(got, verdict, "{site:?}");
            assert_eq!(reasons.join("; "), reason, "{site:?}");
        }
    }

    #[test]
    fn verdicts_order_worst_first_and_round_trip_their_keys() {
        let mut shuffled = vec![
            Verdict::Healthy,
            Verdict::Critical,
            Verdict::Unclaimed,
            Verdict::Attention,
            Verdict::Offline,
        ];
        shuffled.sort();
        assert_eq!(shuffled, ALL);
        for verdict in ALL {
            assert_eq!(Verdict::parse(verdict.key()), Some(verdict));
        }
        assert_eq!(Verdict::parse("fine"), None);
    }
}
