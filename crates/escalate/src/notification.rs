//! What an escalation says: one finding on one host that needs a person.

use model::Severity;

/// A finding the appliance hands to a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// De-duplication key: one open problem per site, host and check, e.g. `lab/win1/WIN-FW-001`.
    pub key: String,
    pub site: String,
    pub target: String,
    pub check: String,
    pub severity: Severity,
    /// One line, e.g. `Windows Firewall is off on win1`.
    pub title: String,
    /// What was seen, what the appliance did, and what a person should do.
    pub detail: String,
    /// Unix seconds when the problem was first seen.
    pub opened_at: i64,
    /// Whether this is a reminder of an earlier, unacknowledged notification.
    pub reminder: bool,
}

impl Notification {
    /// The key for a site, target and check.
    pub fn key_for(site: &str, target: &str, check: &str) -> String {
        format!("{site}/{target}/{check}")
    }

    /// The e-mail subject / chat headline.
    pub fn headline(&self) -> String {
        let prefix = if self.reminder { "Reminder: " } else { "" };
        format!(
            "{prefix}[OsirisCare {}] {} ({})",
            self.severity.as_str().to_ascii_uppercase(),
            self.title,
            self.site
        )
    }
}
