//! Pure inventory logic: classification, FILETIME and generalized-time conversion, RFC 4515 filter
//! escaping, display escaping of hostile values, duplicate detection and inventory diffs (no IO).

use std::collections::{BTreeMap, HashMap};

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// What kind of machine a computer object describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ComputerClass {
    /// A domain controller (primaryGroupID 516/521 or UAC SERVER_TRUST_ACCOUNT).
    DomainController,
    /// A Windows server (operatingSystem contains "Server").
    Server,
    /// Any other Windows machine.
    Workstation,
    /// A non-Windows machine, or one whose operatingSystem is empty or missing.
    Other,
}

impl ComputerClass {
    /// A stable lowercase name (`domain_controller`, `server`, `workstation`, `other`).
    pub fn as_str(self) -> &'static str {
        match self {
            ComputerClass::DomainController => "domain_controller",
            ComputerClass::Server => "server",
            ComputerClass::Workstation => "workstation",
            ComputerClass::Other => "other",
        }
    }
}

/// One computer object found in the directory.
///
/// Text fields hold display-safe values: control characters are replaced by `\u{..}` escapes
/// (see [`escape_for_display`]) and `has_control_characters` records that this happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Computer {
    /// Distinguished name of the object.
    pub dn: String,
    /// `cn`.
    pub name: String,
    /// `sAMAccountName` (usually the name plus `$`); the key used by [`Inventory::diff`].
    pub sam_account_name: String,
    /// `dNSHostName`, if set.
    pub dns_host_name: Option<String>,
    /// `operatingSystem`, if set.
    pub operating_system: Option<String>,
    /// `operatingSystemVersion`, if set.
    pub operating_system_version: Option<String>,
    /// Classification derived from the group, UAC flags and operating system.
    pub class: ComputerClass,
    /// `userAccountControl` has ACCOUNTDISABLE (0x2).
    pub disabled: bool,
    /// Last logon older than the stale age, or never logged on and created longer ago than that.
    pub stale: bool,
    /// Another computer in the same inventory has the same `dNSHostName` (case-insensitive).
    pub duplicate_dns_host_name: bool,
    /// `lastLogonTimestamp`, if set and representable.
    pub last_logon: Option<OffsetDateTime>,
    /// `whenCreated`, if set and parseable.
    pub when_created: Option<OffsetDateTime>,
    /// Raw `userAccountControl` (0 when missing or not a number).
    pub user_account_control: u32,
    /// Raw `primaryGroupID`, if set and numeric.
    pub primary_group_id: Option<u32>,
    /// At least one attribute value contained control characters (escaped in this struct).
    pub has_control_characters: bool,
    /// `memberOf`: the groups the object is a direct member of.
    pub member_of: Vec<String>,
    /// Every group the object belongs to, directly or through groups inside groups, sorted
    /// (filled in by [`nest_groups`] from the directory's groups; empty until then).
    pub groups: Vec<String>,
    /// `mS-DS-CreatorSID` as text (`S-1-5-21-…`): a non-administrator created this object through
    /// the machine account quota. An unparseable value is kept as `unparseable SID <hex>`, never
    /// dropped.
    pub creator_sid: Option<String>,
}

/// Fills in each computer's [`Computer::groups`]: its direct groups and, through `parents`
/// (each group's distinguished name, in lower case, to the groups it is a direct member of), the
/// groups those belong to, and so on. A loop of groups inside each other ends where it closes.
pub fn nest_groups(
    computers: &mut [Computer],
    parents: &std::collections::BTreeMap<String, Vec<String>>,
) {
    for computer in computers {
        let mut seen = std::collections::BTreeMap::new();
        let mut queue: Vec<String> = computer.member_of.clone();
        while let Some(group) = queue.pop() {
            let key = group.to_lowercase();
            if seen.contains_key(&key) {
                continue;
            }
            if let Some(up) = parents.get(&key) {
                queue.extend(up.iter().cloned());
            }
            seen.insert(key, group);
        }
        computer.groups = seen.into_values().collect();
    }
}

/// The result of one complete discovery: every computer object under the base DN.
///
/// An `Inventory` is only ever built from a search that finished; a search that fails part-way is
/// an error, never a shorter inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// Every computer, sorted by `sam_account_name` (case-insensitive).
    pub computers: Vec<Computer>,
    /// Number of result pages the directory returned.
    pub fetched_pages: u32,
    /// The domain controller that answered (host or address as connected to).
    pub domain_controller: String,
    /// `dNSHostName`s (lowercase) held by more than one computer.
    pub duplicate_dns_host_names: Vec<String>,
}

/// One difference between two inventories, for evidence events.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InventoryChange {
    /// A computer is in the new inventory but not the old one.
    Appeared {
        /// `sAMAccountName` of the computer.
        sam_account_name: String,
        /// Its class in the new inventory.
        class: ComputerClass,
    },
    /// A computer was in the old inventory and is gone.
    Disappeared {
        /// `sAMAccountName` of the computer.
        sam_account_name: String,
        /// Its class in the old inventory.
        class: ComputerClass,
    },
    /// `operatingSystem` or `operatingSystemVersion` changed.
    OsChanged {
        /// `sAMAccountName` of the computer.
        sam_account_name: String,
        /// Old `operatingSystem` and `operatingSystemVersion`.
        old: (Option<String>, Option<String>),
        /// New `operatingSystem` and `operatingSystemVersion`.
        new: (Option<String>, Option<String>),
    },
}

/// Raw attribute values of one computer object, as read from the directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawComputer {
    /// Distinguished name.
    pub dn: String,
    /// `cn`.
    pub cn: Option<String>,
    /// `sAMAccountName`.
    pub sam_account_name: Option<String>,
    /// `dNSHostName`.
    pub dns_host_name: Option<String>,
    /// `operatingSystem`.
    pub operating_system: Option<String>,
    /// `operatingSystemVersion`.
    pub operating_system_version: Option<String>,
    /// `lastLogonTimestamp` (FILETIME as decimal text).
    pub last_logon_timestamp: Option<String>,
    /// `userAccountControl` (decimal text).
    pub user_account_control: Option<String>,
    /// `primaryGroupID` (decimal text).
    pub primary_group_id: Option<String>,
    /// `whenCreated` (generalized time).
    pub when_created: Option<String>,
    /// `memberOf`: the groups the object is a direct member of (distinguished names).
    pub member_of: Vec<String>,
    /// `mS-DS-CreatorSID` (binary SID): set by AD when a user without the right to create
    /// computer objects added this one through the machine account quota.
    pub creator_sid: Option<Vec<u8>>,
}

/// UAC flag ACCOUNTDISABLE.
pub const UAC_ACCOUNT_DISABLE: u32 = 0x2;
/// UAC flag SERVER_TRUST_ACCOUNT (domain controllers).
pub const UAC_SERVER_TRUST_ACCOUNT: u32 = 0x2000;
/// Seconds between 1601-01-01 (FILETIME epoch) and 1970-01-01.
pub const FILETIME_UNIX_OFFSET_SECS: i64 = 11_644_473_600;

/// Escapes a value for use inside an LDAP filter assertion (RFC 4515 §3).
///
/// `*`, `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`, `\5c` and `\00`; everything else,
/// including non-ASCII UTF-8, is kept, so the result always matches the value literally.
pub fn escape_filter_value(value: &str) -> String {
    let mut res = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '*' => res.push_str("\\2a"),
            '(' => res.push_str("\\28"),
            ')' => res.push_str("\\29"),
            '\\' => res.push_str("\\5c"),
            '\0' => res.push_str("\\00"),
            other => res.push(other),
        }
    }
    res
}

/// Replaces control characters (C0, DEL, C1) with `\u{..}` escapes so a value is safe to print.
///
/// Backslashes are doubled so the escaping cannot be forged by the value itself.
pub fn escape_for_display(value: &str) -> String {
    let mut res = String::with_capacity(value.len());
    for ch in value.chars() {
        if ch.is_control() {
            res.push_str(&format!("\\u{{{:x}}}", u32::from(ch)));
        } else if ch == '\\' {
            res.push_str("\\\\");
        } else {
            res.push(ch);
        }
    }
    res
}

/// Converts a Windows FILETIME (100 ns ticks since 1601-01-01 UTC) to a UTC instant.
///
/// Returns `None` for 0 and `i64::MAX` ("never") and for values outside `time`'s range.
pub fn filetime_to_datetime(filetime: i64) -> Option<OffsetDateTime> {
    if filetime <= 0 || filetime == i64::MAX {
        return None;
    }
    let secs = filetime / 10_000_000 - FILETIME_UNIX_OFFSET_SECS;
    let nanos = (filetime % 10_000_000) * 100;
    let whole = OffsetDateTime::from_unix_timestamp(secs).ok()?;
    whole.checked_add(Duration::nanoseconds(nanos))
}

/// Converts a UTC instant to a Windows FILETIME.
pub fn datetime_to_filetime(instant: OffsetDateTime) -> i64 {
    (instant.unix_timestamp() + FILETIME_UNIX_OFFSET_SECS) * 10_000_000
        + i64::from(instant.nanosecond() / 100)
}

/// Parses an LDAP generalized time as AD writes it (`YYYYMMDDHHMMSS[.f]Z`).
pub fn parse_generalized_time(value: &str) -> Option<OffsetDateTime> {
    let digits = value.get(0..14)?;
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) || !value.ends_with('Z') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| digits.get(range)?.parse::<u32>().ok();
    let year = i32::try_from(number(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(number(4..6)?).ok()?).ok()?;
    let day = u8::try_from(number(6..8)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let clock = Time::from_hms(
        u8::try_from(number(8..10)?).ok()?,
        u8::try_from(number(10..12)?).ok()?,
        u8::try_from(number(12..14)?).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, clock).assume_utc())
}

/// Classifies a computer from its primary group, UAC flags and operating system string.
pub fn classify(
    primary_group_id: Option<u32>,
    user_account_control: u32,
    operating_system: Option<&str>,
) -> ComputerClass {
    if matches!(primary_group_id, Some(516 | 521))
        || user_account_control & UAC_SERVER_TRUST_ACCOUNT != 0
    {
        return ComputerClass::DomainController;
    }
    let os = operating_system.unwrap_or("").to_lowercase();
    if !os.contains("windows") {
        ComputerClass::Other
    } else if os.contains("server") {
        ComputerClass::Server
    } else {
        ComputerClass::Workstation
    }
}

/// Whether an account is stale at `now`: its last logon is more than `stale_after_days` ago, or it
/// never logged on and was created more than `stale_after_days` ago.
pub fn is_stale(
    last_logon: Option<OffsetDateTime>,
    when_created: Option<OffsetDateTime>,
    now: OffsetDateTime,
    stale_after_days: u32,
) -> bool {
    let cutoff = now - Duration::days(i64::from(stale_after_days));
    match (last_logon, when_created) {
        (Some(logon), _) => logon < cutoff,
        (None, Some(created)) => created < cutoff,
        (None, None) => false,
    }
}

/// Turns raw attribute values into a [`Computer`] (duplicate flags are set by [`build_inventory`]).
pub fn computer_from_raw(
    raw: &RawComputer,
    now: OffsetDateTime,
    stale_after_days: u32,
) -> Computer {
    let user_account_control = raw
        .user_account_control
        .as_deref()
        .and_then(|text| text.trim().parse::<i64>().ok())
        .map_or(0, |value| value as u32);
    let primary_group_id = raw
        .primary_group_id
        .as_deref()
        .and_then(|text| text.trim().parse::<u32>().ok());
    let last_logon = raw
        .last_logon_timestamp
        .as_deref()
        .and_then(|text| text.trim().parse::<i64>().ok())
        .and_then(filetime_to_datetime);
    let when_created = raw.when_created.as_deref().and_then(parse_generalized_time);
    let class = classify(
        primary_group_id,
        user_account_control,
        raw.operating_system.as_deref(),
    );
    let mut has_control_characters = false;
    let mut clean = |value: &str| {
        if value.chars().any(char::is_control) {
            has_control_characters = true;
        }
        escape_for_display(value)
    };
    let name = clean(raw.cn.as_deref().unwrap_or(""));
    let sam_account_name = clean(raw.sam_account_name.as_deref().unwrap_or(&raw.dn));
    let dn = clean(&raw.dn);
    let dns_host_name = raw.dns_host_name.as_deref().map(&mut clean);
    let operating_system = raw.operating_system.as_deref().map(&mut clean);
    let operating_system_version = raw.operating_system_version.as_deref().map(&mut clean);
    let member_of = raw.member_of.iter().map(|dn| clean(dn)).collect();
    Computer {
        dn,
        name,
        sam_account_name,
        dns_host_name,
        operating_system,
        operating_system_version,
        class,
        disabled: user_account_control & UAC_ACCOUNT_DISABLE != 0,
        stale: is_stale(last_logon, when_created, now, stale_after_days),
        duplicate_dns_host_name: false,
        last_logon,
        when_created,
        user_account_control,
        primary_group_id,
        has_control_characters,
        member_of,
        groups: Vec::new(),
        creator_sid: raw.creator_sid.as_deref().map(sid_to_string),
    }
}

/// A binary SID as text (`S-1-5-21-…`, MS-DTYP 2.4.2.2), or `unparseable SID <hex>`.
pub fn sid_to_string(bytes: &[u8]) -> String {
    let parsed = (|| {
        let (&revision, rest) = bytes.split_first()?;
        let (&count, rest) = rest.split_first()?;
        let (authority, rest) = rest.split_at_checked(6)?;
        if rest.len() != usize::from(count) * 4 {
            return None;
        }
        let authority = authority
            .iter()
            .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
        let mut text = format!("S-{revision}-{authority}");
        for chunk in rest.as_chunks::<4>().0 {
            text.push_str(&format!("-{}", u32::from_le_bytes(*chunk)));
        }
        Some(text)
    })();
    parsed.unwrap_or_else(|| {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("unparseable SID {hex}")
    })
}

/// Builds an inventory: sorts the computers and flags duplicate `dNSHostName`s.
pub fn build_inventory(
    mut computers: Vec<Computer>,
    fetched_pages: u32,
    domain_controller: String,
) -> Inventory {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for computer in &computers {
        if let Some(dns) = &computer.dns_host_name {
            *counts.entry(dns.to_lowercase()).or_default() += 1;
        }
    }
    for computer in &mut computers {
        computer.duplicate_dns_host_name = computer
            .dns_host_name
            .as_ref()
            .is_some_and(|dns| counts.get(&dns.to_lowercase()).is_some_and(|n| *n > 1));
    }
    computers.sort_by_key(|computer| computer.sam_account_name.to_lowercase());
    let mut duplicate_dns_host_names: Vec<String> = counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(dns, _)| dns)
        .collect();
    duplicate_dns_host_names.sort();
    Inventory {
        computers,
        fetched_pages,
        domain_controller,
        duplicate_dns_host_names,
    }
}

impl Inventory {
    /// What changed from `old` to `self`, keyed by `sAMAccountName` (case-insensitive), in name order.
    pub fn diff(&self, old: &Inventory) -> Vec<InventoryChange> {
        let key = |computer: &Computer| computer.sam_account_name.to_lowercase();
        let old_by_name: BTreeMap<String, &Computer> =
            old.computers.iter().map(|c| (key(c), c)).collect();
        let new_by_name: BTreeMap<String, &Computer> =
            self.computers.iter().map(|c| (key(c), c)).collect();
        let mut res = Vec::new();
        for (name, new) in &new_by_name {
            match old_by_name.get(name) {
                None => res.push(InventoryChange::Appeared {
                    sam_account_name: new.sam_account_name.clone(),
                    class: new.class,
                }),
                Some(old) => {
                    if old.operating_system != new.operating_system
                        || old.operating_system_version != new.operating_system_version
                    {
                        res.push(InventoryChange::OsChanged {
                            sam_account_name: new.sam_account_name.clone(),
                            old: (
                                old.operating_system.clone(),
                                old.operating_system_version.clone(),
                            ),
                            new: (
                                new.operating_system.clone(),
                                new.operating_system_version.clone(),
                            ),
                        });
                    }
                }
            }
        }
        for (name, old) in &old_by_name {
            if !new_by_name.contains_key(name) {
                res.push(InventoryChange::Disappeared {
                    sam_account_name: old.sam_account_name.clone(),
                    class: old.class,
                });
            }
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use crate::inventory::*;

    const NOW: OffsetDateTime = datetime!(2026-11-01 00:00 UTC);

    fn raw(name: &str, os: Option<&str>, uac: &str, group: &str) -> RawComputer {
        RawComputer {
            dn: format!("CN={name},OU=Workstations,DC=lab,DC=example"),
            cn: Some(name.to_owned()),
            sam_account_name: Some(format!("{name}$")),
            dns_host_name: Some(format!("{}.lab.example", name.to_lowercase())),
            operating_system: os.map(str::to_owned),
            operating_system_version: Some("10.0 (19045)".to_owned()),
            last_logon_timestamp: Some(datetime_to_filetime(NOW - Duration::days(1)).to_string()),
            user_account_control: Some(uac.to_owned()),
            primary_group_id: Some(group.to_owned()),
            when_created: Some("20200101000000.0Z".to_owned()),
            member_of: Vec::new(),
            creator_sid: None,
        }
    }

    #[test]
    fn creator_sids_read_as_windows_writes_them() {
        // S-1-5-21-1004336348-1177238915-682003330-1105, as AD stores it.
        let mut sid = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
        for sub in [21u32, 1_004_336_348, 1_177_238_915, 682_003_330, 1105] {
            sid.extend_from_slice(&sub.to_le_bytes());
        }
        assert_eq!(
            sid_to_string(&sid),
            "S-1-5-21-1004336348-1177238915-682003330-1105"
        );
        assert_eq!(sid_to_string(&[1, 5, 0]), "unparseable SID 010500");
        let mut computer = raw("ROGUE", Some("Windows 10 Pro"), "4096", "515");
        computer.creator_sid = Some(sid);
        computer.member_of = vec!["CN=Scanned PCs,DC=lab,DC=example".to_owned()];
        let parsed = computer_from_raw(&computer, NOW, 90);
        assert_eq!(
            parsed.creator_sid.as_deref(),
            Some("S-1-5-21-1004336348-1177238915-682003330-1105")
        );
        assert_eq!(parsed.member_of, ["CN=Scanned PCs,DC=lab,DC=example"]);
    }

    #[test]
    fn groups_inside_groups_are_followed_and_loops_end() {
        let mut computer = computer_from_raw(
            &RawComputer {
                member_of: vec!["CN=Front Desk,OU=Groups,DC=lab,DC=example".to_owned()],
                ..raw("WS1", Some("Windows 11 Pro"), "4096", "515")
            },
            NOW,
            90,
        );
        let mut loner = computer_from_raw(&raw("WS2", None, "4096", "515"), NOW, 90);
        loner.member_of = vec!["CN=Lonely,DC=lab,DC=example".to_owned()];
        let parents = std::collections::BTreeMap::from([
            (
                "cn=front desk,ou=groups,dc=lab,dc=example".to_owned(),
                vec!["CN=Scanned PCs,DC=lab,DC=example".to_owned()],
            ),
            (
                "cn=scanned pcs,dc=lab,dc=example".to_owned(),
                vec!["CN=All PCs,DC=lab,DC=example".to_owned()],
            ),
            // A loop: All PCs is inside Front Desk again.
            (
                "cn=all pcs,dc=lab,dc=example".to_owned(),
                vec!["CN=FRONT DESK,OU=Groups,DC=lab,DC=example".to_owned()],
            ),
        ]);
        let mut both = [computer.clone(), loner];
        nest_groups(&mut both, &parents);
        assert_eq!(
            both[0].groups,
            [
                "CN=All PCs,DC=lab,DC=example",
                "CN=Front Desk,OU=Groups,DC=lab,DC=example",
                "CN=Scanned PCs,DC=lab,DC=example",
            ]
        );
        assert_eq!(both[1].groups, ["CN=Lonely,DC=lab,DC=example"]);
        computer.member_of.clear();
        nest_groups(std::slice::from_mut(&mut computer), &parents);
        assert!(computer.groups.is_empty());
    }

    #[test]
    fn escape_filter_value_escapes_every_rfc4515_special() {
        assert_eq!(escape_filter_value("*)(cn=*"), "\\2a\\29\\28cn=\\2a");
        assert_eq!(escape_filter_value("a\\b\0c"), "a\\5cb\\00c");
        assert_eq!(escape_filter_value("plain Ünïcode"), "plain Ünïcode");
        assert_eq!(escape_filter_value(""), "");
        // Already-escaped text is escaped again, never passed through.
        assert_eq!(escape_filter_value("\\2a"), "\\5c2a");
    }

    #[test]
    fn escaped_filter_values_contain_no_live_metacharacters() {
        let hostile = [
            "*",
            ")(objectClass=*)",
            "\\",
            "x)(|(cn=*",
            "\0*\0",
            "((((",
            "*)))",
        ];
        for value in hostile {
            let escaped = escape_filter_value(value);
            assert!(
                !escaped.contains(['*', '(', ')', '\0']),
                "{value:?} -> {escaped:?}"
            );
            // Every backslash starts a two-hex-digit escape.
            let bytes = escaped.as_bytes();
            for (idx, byte) in bytes.iter().enumerate() {
                if *byte == b'\\' {
                    let hex = escaped.get(idx + 1..idx + 3).unwrap_or("");
                    assert!(
                        hex.len() == 2 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
                        "{escaped:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn escape_for_display_neutralises_control_characters() {
        assert_eq!(
            escape_for_display("Windows 10\x1b[2J\x07\r\n"),
            "Windows 10\\u{1b}[2J\\u{7}\\u{d}\\u{a}"
        );
        assert_eq!(escape_for_display("a\\u{1b}"), "a\\\\u{1b}");
        assert_eq!(
            escape_for_display("del\x7f c1\u{85}"),
            "del\\u{7f} c1\\u{85}"
        );
        assert_eq!(escape_for_display("ok"), "ok");
    }

    #[test]
    fn filetime_round_trips_and_rejects_never() {
        let instant = datetime!(2026-05-15 12:34:56 UTC);
        let filetime = datetime_to_filetime(instant);
        assert_eq!(
            filetime,
            (instant.unix_timestamp() + 11_644_473_600) * 10_000_000
        );
        assert_eq!(filetime_to_datetime(filetime), Some(instant));
        assert_eq!(
            filetime_to_datetime(116_444_736_000_000_000),
            Some(OffsetDateTime::UNIX_EPOCH)
        );
        assert_eq!(filetime_to_datetime(0), None);
        assert_eq!(filetime_to_datetime(i64::MAX), None);
        assert_eq!(filetime_to_datetime(-5), None);
    }

    #[test]
    fn generalized_time_parses_ad_format_and_rejects_garbage() {
        assert_eq!(
            parse_generalized_time("20261128064311.0Z"),
            Some(datetime!(2026-11-28 06:43:11 UTC))
        );
        assert_eq!(parse_generalized_time("20261328064311.0Z"), None);
        assert_eq!(parse_generalized_time("2026"), None);
        assert_eq!(parse_generalized_time("2026112806431x.0Z"), None);
        assert_eq!(parse_generalized_time("ééééééééééééééé"), None);
    }

    #[test]
    fn classify_covers_dc_server_workstation_other() {
        assert_eq!(
            classify(Some(516), 0x82000, Some("Samba")),
            ComputerClass::DomainController
        );
        assert_eq!(
            classify(Some(521), 0x1000, None),
            ComputerClass::DomainController
        );
        assert_eq!(
            classify(Some(515), 0x2000, None),
            ComputerClass::DomainController
        );
        assert_eq!(
            classify(Some(515), 0x1000, Some("Windows Server 2022 Standard")),
            ComputerClass::Server
        );
        assert_eq!(
            classify(Some(515), 0x1000, Some("Windows 11 Pro")),
            ComputerClass::Workstation
        );
        assert_eq!(
            classify(Some(515), 0x1000, Some("Ubuntu")),
            ComputerClass::Other
        );
        assert_eq!(classify(Some(515), 0x1000, Some("")), ComputerClass::Other);
        assert_eq!(classify(None, 0, None), ComputerClass::Other);
    }

    #[test]
    fn stale_uses_last_logon_then_creation() {
        let days = |n: i64| Some(NOW - Duration::days(n));
        assert!(!is_stale(days(89), days(1000), NOW, 90));
        assert!(is_stale(days(91), days(1000), NOW, 90));
        assert!(is_stale(None, days(91), NOW, 90));
        assert!(!is_stale(None, days(10), NOW, 90));
        assert!(!is_stale(None, None, NOW, 90));
    }

    #[test]
    fn hostile_raw_values_become_safe_computers() {
        let mut hostile = raw(
            "HOSTILE",
            Some("Windows 10\x1b[2J\nServer"),
            "not-a-number",
            "x",
        );
        hostile.last_logon_timestamp = Some("9999999999999999999999".to_owned());
        hostile.when_created = Some("garbage".to_owned());
        let computer = computer_from_raw(&hostile, NOW, 90);
        assert!(computer.has_control_characters);
        assert_eq!(
            computer.operating_system.as_deref(),
            Some("Windows 10\\u{1b}[2J\\u{a}Server")
        );
        assert_eq!(computer.class, ComputerClass::Server);
        assert_eq!(computer.user_account_control, 0);
        assert_eq!(computer.primary_group_id, None);
        assert!(!computer.stale);
        let empty = computer_from_raw(&RawComputer::default(), NOW, 90);
        assert_eq!(empty.class, ComputerClass::Other);
        assert!(!empty.has_control_characters);
    }

    #[test]
    fn build_inventory_flags_duplicates_case_insensitively() {
        let mut first = computer_from_raw(&raw("A", Some("Windows 10"), "4096", "515"), NOW, 90);
        let mut second = computer_from_raw(&raw("B", Some("Windows 10"), "4098", "515"), NOW, 90);
        let third = computer_from_raw(&raw("C", Some("Windows 10"), "4096", "515"), NOW, 90);
        first.dns_host_name = Some("Dup.lab.example".to_owned());
        second.dns_host_name = Some("dup.LAB.example".to_owned());
        let inventory = build_inventory(vec![third, second, first], 1, "dc".to_owned());
        let flags: Vec<(&str, bool, bool)> = inventory
            .computers
            .iter()
            .map(|c| (c.name.as_str(), c.duplicate_dns_host_name, c.disabled))
            .collect();
        assert_eq!(
            flags,
            [("A", true, false), ("B", true, true), ("C", false, false)]
        );
        assert_eq!(inventory.duplicate_dns_host_names, ["dup.lab.example"]);
    }

    #[test]
    fn diff_reports_appeared_disappeared_and_os_changes() {
        let build = |items: &[(&str, &str)]| {
            let computers = items
                .iter()
                .map(|(name, os)| computer_from_raw(&raw(name, Some(os), "4096", "515"), NOW, 90))
                .collect();
            build_inventory(computers, 1, "dc".to_owned())
        };
        let old = build(&[
            ("A", "Windows 10 Pro"),
            ("B", "Windows 10 Pro"),
            ("C", "Ubuntu"),
        ]);
        let new = build(&[
            ("A", "Windows 10 Pro"),
            ("B", "Windows 11 Pro"),
            ("D", "macOS"),
        ]);
        assert_eq!(
            new.diff(&old),
            [
                InventoryChange::OsChanged {
                    sam_account_name: "B$".to_owned(),
                    old: (
                        Some("Windows 10 Pro".to_owned()),
                        Some("10.0 (19045)".to_owned())
                    ),
                    new: (
                        Some("Windows 11 Pro".to_owned()),
                        Some("10.0 (19045)".to_owned())
                    ),
                },
                InventoryChange::Appeared {
                    sam_account_name: "D$".to_owned(),
                    class: ComputerClass::Other
                },
                InventoryChange::Disappeared {
                    sam_account_name: "C$".to_owned(),
                    class: ComputerClass::Other
                },
            ]
        );
        assert_eq!(new.diff(&new), []);
    }
}
