//! Person names, which no regular expression finds: a corpus of common given names and surnames
//! (`names/given.txt`, `names/surnames.txt`), user-name shapes built from them (`jsmith`,
//! `smithj`, `johnsmith`), and the capitalised words next to a corpus name or after a cue word
//! (`Patient:`, `Dr.`, `name=`).
//!
//! What this misses (a rare name with no cue and no corpus name beside it, a name glued into a
//! longer word, names in other scripts) is listed in docs/L2.md.

use std::collections::HashSet;
use std::sync::LazyLock;

static GIVEN: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| corpus(include_str!("names/given.txt")));
static SURNAMES: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| corpus(include_str!("names/surnames.txt")));

/// Words after which capitalised words are taken to be a name (compared lowercase).
const CUES: &[&str] = &[
    "patient",
    "pt",
    "name",
    "fullname",
    "firstname",
    "lastname",
    "surname",
    "dr",
    "mr",
    "mrs",
    "ms",
    "miss",
    "nurse",
    "doctor",
    "provider",
    "physician",
    "guarantor",
    "insured",
    "subscriber",
    "dear",
    "employee",
    "owner",
];

/// Capitalised words that are never taken for a name by the cue and neighbour rules.
const COMMON_CAPITALISED: &[&str] = &[
    "the",
    "and",
    "for",
    "from",
    "with",
    "to",
    "of",
    "in",
    "on",
    "at",
    "by",
    "is",
    "was",
    "a",
    "an",
    "or",
    "not",
    "no",
    "yes",
    "dob",
    "ssn",
    "mrn",
    "phone",
    "address",
    "email",
    "mail",
    "id",
    "failed",
    "failure",
    "error",
    "warning",
    "info",
    "notice",
    "debug",
    "critical",
    "service",
    "services",
    "user",
    "users",
    "group",
    "host",
    "server",
    "client",
    "login",
    "logon",
    "session",
    "password",
    "account",
    "admin",
    "administrator",
    "root",
    "system",
    "windows",
    "linux",
    "microsoft",
    "office",
    "file",
    "files",
    "folder",
    "record",
    "records",
    "chart",
    "patient",
    "patients",
    "visit",
    "note",
    "notes",
    "report",
    "scan",
    "scans",
    "street",
    "avenue",
    "road",
    "suite",
    "apt",
    "unit",
    "city",
    "state",
    "zip",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "am",
    "pm",
    "utc",
    "dr",
    "mr",
    "mrs",
    "ms",
    "md",
    "rn",
    "np",
    "pa",
    "do",
    "dds",
];

/// File-name extensions and unit types that end an FQDN-shaped word but do not make it a host.
const FILE_SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "timer",
    "target",
    "mount",
    "automount",
    "path",
    "slice",
    "scope",
    "device",
    "swap",
    "conf",
    "cfg",
    "ini",
    "log",
    "sh",
    "ps1",
    "psm1",
    "txt",
    "pdf",
    "json",
    "xml",
    "csv",
    "doc",
    "docx",
    "xls",
    "xlsx",
    "ppt",
    "pptx",
    "rtf",
    "jpg",
    "jpeg",
    "png",
    "gif",
    "tif",
    "tiff",
    "bmp",
    "dcm",
    "hl7",
    "py",
    "so",
    "gz",
    "tgz",
    "xz",
    "bz2",
    "zip",
    "tar",
    "deb",
    "rpm",
    "exe",
    "dll",
    "sys",
    "msi",
    "bat",
    "cmd",
    "bak",
    "tmp",
    "old",
    "lock",
    "pid",
    "sock",
    "db",
    "sqlite",
    "key",
    "pem",
    "crt",
    "cer",
    "d",
    "rules",
    "list",
    "html",
    "htm",
    "js",
    "css",
    "md",
    "yml",
    "yaml",
    "toml",
    "orig",
    "dpkg",
    "new",
    "gpg",
    "asc",
    "sig",
    "iso",
    "img",
    "vhd",
    "vhdx",
    "mp4",
    "wav",
    "mp3",
    "eml",
    "msg",
    "pst",
    "ost",
];

/// Whether `word` (letters only) is a person name or a user name built from one.
pub fn is_name(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    if lower.len() <= 2 {
        // Two-letter surnames (Li, Le, Vo, Wu) only when written as names.
        return word.chars().next().is_some_and(char::is_uppercase)
            && (GIVEN.contains(lower.as_str()) || SURNAMES.contains(lower.as_str()));
    }
    if GIVEN.contains(lower.as_str()) || SURNAMES.contains(lower.as_str()) {
        return true;
    }
    let long_surname = |s: &str| s.len() >= 5 && SURNAMES.contains(s);
    if lower.len() >= 6 && (long_surname(&lower[1..]) || long_surname(&lower[..lower.len() - 1])) {
        return true;
    }
    (3..lower.len().saturating_sub(2)).any(|split| {
        lower.is_char_boundary(split)
            && GIVEN.contains(&lower[..split])
            && SURNAMES.contains(&lower[split..])
    })
}

/// Whether `word` announces a name after it.
pub fn is_cue(word: &str) -> bool {
    CUES.contains(&word.to_ascii_lowercase().as_str())
}

/// Whether the capitalised `word` is an ordinary word the cue and neighbour rules must skip.
pub fn is_common_capitalised(word: &str) -> bool {
    COMMON_CAPITALISED.contains(&word.to_ascii_lowercase().as_str())
}

/// Whether the last label of an FQDN-shaped word is a file extension or unit type, not a TLD.
pub fn is_file_suffix(label: &str) -> bool {
    FILE_SUFFIXES.contains(&label.to_ascii_lowercase().as_str())
}

fn corpus(text: &'static str) -> HashSet<&'static str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::is_name;

    #[test]
    fn user_name_shapes() {
        for name in ["Smith", "jsmith", "smithj", "johnsmith", "Li", "maria"] {
            assert!(is_name(name), "{name}");
        }
        for word in [
            "li", "award", "gross", "chill", "service", "grace", "west", "failed",
        ] {
            assert!(!is_name(word), "{word}");
        }
    }
}
