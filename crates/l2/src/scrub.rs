//! PHI and secret scrubbing: every value from a host is rewritten with consistent pseudonyms
//! (`PERSON_1`, `HOST_2`, …) before it can reach a prompt, and the model's answer is mapped back.
//!
//! What is found, in this order: credentials (key = value pairs named like secrets, PEM blocks,
//! bearer tokens, well-known token shapes, URL user info, long random-looking strings), e-mail
//! addresses, US social security numbers, Medicare beneficiary ids, MRNs and insurance ids (by
//! their labels and by the letter-prefix-plus-digits shape), MAC addresses, IPv4 and IPv6 addresses,
//! dates (ISO, US, written-out months, compact `YYYYMMDD`), phone numbers, postal addresses
//! (street number + name + suffix, a state and ZIP code), host names (the caller's known hosts,
//! FQDNs under common and internal top-level domains), then person names (see [`crate::names`]).
//! Secrets are never mapped back: a model cannot ask for one.
//!
//! What it misses is in docs/L2.md ("What the scrubber misses").

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::{Captures, Regex};

use crate::names;

/// The kinds of pseudonyms, as they appear in the text sent (`PERSON_3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Person,
    Host,
    Ip,
    Email,
    Phone,
    Date,
    Ssn,
    Mrn,
    Insurance,
    Address,
    Device,
    /// Credential-like text; never mapped back.
    Secret,
    /// Host text that already looked like one of our pseudonyms.
    Token,
}

/// The pseudonyms handed out for one consultation, both ways.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    known_hosts: Vec<String>,
    forward: HashMap<(Kind, String), String>,
    backward: HashMap<String, String>,
    counters: HashMap<Kind, usize>,
}

/// A pseudonym in the model's answer that this consultation never handed out, or a secret's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{token}` is not a pseudonym this request contained (or stands for a secret, which is never mapped back)"
)]
pub struct UnknownPseudonym {
    /// The token as the model wrote it.
    pub token: String,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::Person,
        Kind::Host,
        Kind::Ip,
        Kind::Email,
        Kind::Phone,
        Kind::Date,
        Kind::Ssn,
        Kind::Mrn,
        Kind::Insurance,
        Kind::Address,
        Kind::Device,
        Kind::Secret,
        Kind::Token,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Person => "PERSON",
            Kind::Host => "HOST",
            Kind::Ip => "IP",
            Kind::Email => "EMAIL",
            Kind::Phone => "PHONE",
            Kind::Date => "DATE",
            Kind::Ssn => "SSN",
            Kind::Mrn => "MRN",
            Kind::Insurance => "INSURANCE",
            Kind::Address => "ADDRESS",
            Kind::Device => "DEVICE",
            Kind::Secret => "SECRET",
            Kind::Token => "TOKEN",
        }
    }
}

impl Scrubber {
    /// A scrubber that also replaces these exact host names (the site's targets), whatever shape
    /// they have.
    pub fn new(known_hosts: &[&str]) -> Scrubber {
        let mut known_hosts: Vec<String> = known_hosts
            .iter()
            .filter(|h| h.len() >= 2)
            .map(|h| (*h).to_owned())
            .collect();
        // Longest first, so `pc1.clinic.lan` is replaced before `pc1`.
        known_hosts.sort_by_key(|h| std::cmp::Reverse(h.len()));
        Scrubber {
            known_hosts,
            ..Scrubber::default()
        }
    }

    /// The pseudonym for `original` of `kind`, the same one every time within this scrubber.
    pub fn pseudonym(&mut self, kind: Kind, original: &str) -> String {
        let original = &original.replace('\u{1}', "_");
        if let Some(existing) = self.forward.get(&(kind, original.to_owned())) {
            return existing.clone();
        }
        let counter = self.counters.entry(kind).or_insert(0);
        *counter += 1;
        let token = format!("{}_{counter}", kind.label());
        self.forward
            .insert((kind, original.to_owned()), token.clone());
        if kind != Kind::Secret {
            self.backward.insert(token.clone(), original.to_owned());
        }
        token
    }

    /// `text` with every sensitive span replaced by its pseudonym.
    pub fn scrub(&mut self, text: &str) -> String {
        // `_` is a word character to `regex`, so `Smith_John_1961-04-12` would hide its date from
        // every `\b`: underscores become U+0001 while the patterns run (a real U+0001 in host
        // text becomes U+FFFD first), and pseudonyms keep their real `_`.
        // Pseudonyms are marked with U+E000 … U+E001 while the patterns run, so no later pattern
        // rewrites a pseudonym or reads across one (an e-mail address is not `SECRET_1@host`).
        let prepared: String = text
            .chars()
            .map(|c| match c {
                '\u{1}' | MARK_START | MARK_END => '\u{fffd}',
                '_' => '\u{1}',
                c => c,
            })
            .collect();
        let out = self.scrub_prepared(&prepared);
        out.chars()
            .filter_map(|c| match c {
                MARK_START | MARK_END => None,
                '\u{1}' => Some('_'),
                c => Some(c),
            })
            .collect()
    }

    /// The pseudonym as it stands in text while the patterns run.
    fn marked(&mut self, kind: Kind, original: &str) -> String {
        let token = self.pseudonym(kind, original);
        format!("{MARK_START}{}{MARK_END}", token.replace('_', "\u{1}"))
    }

    fn scrub_prepared(&mut self, text: &str) -> String {
        let mut out = replace(&PATTERNS.existing_tokens, text, |caps| {
            self.marked(Kind::Token, &caps[0])
        });
        out = self.scrub_secrets(&out);
        out = replace(&PATTERNS.email, &out, |caps| {
            self.marked(Kind::Email, &caps[0])
        });
        for (regex, kind) in [
            (&PATTERNS.ssn, Kind::Ssn),
            (&PATTERNS.mbi, Kind::Insurance),
            (&PATTERNS.mac, Kind::Device),
            (&PATTERNS.ipv6, Kind::Ip),
            (&PATTERNS.ipv4, Kind::Ip),
        ] {
            out = replace(regex, &out, |caps| self.marked(kind, &caps[0]));
        }
        for (regex, kind) in [
            (&PATTERNS.labelled_insurance, Kind::Insurance),
            (&PATTERNS.labelled_mrn, Kind::Mrn),
        ] {
            out = replace(regex, &out, |caps| {
                let whole = &caps[0];
                let value = &caps["value"];
                let label = &whole[..whole.len() - value.len()];
                if label.ends_with(|c: char| c.is_ascii_alphanumeric()) {
                    // `MRN00482913`: the label is part of the identifier.
                    return self.marked(kind, whole);
                }
                let token = self.marked(kind, value);
                format!("{label}{token}")
            });
        }
        for (regex, kind) in [
            (&PATTERNS.date_iso, Kind::Date),
            (&PATTERNS.date_us, Kind::Date),
            (&PATTERNS.date_words, Kind::Date),
            (&PATTERNS.date_compact, Kind::Date),
            (&PATTERNS.phone, Kind::Phone),
            (&PATTERNS.street, Kind::Address),
            (&PATTERNS.po_box, Kind::Address),
            (&PATTERNS.state_zip, Kind::Address),
            (&PATTERNS.prefixed_id, Kind::Mrn),
            (&PATTERNS.nine_digits, Kind::Ssn),
        ] {
            out = replace(regex, &out, |caps| self.marked(kind, &caps[0]));
        }
        for host in self.known_hosts.clone() {
            let prepared_host = host.replace('_', "\u{1}");
            if out.contains(&prepared_host) {
                out = self.replace_whole(&out, &prepared_host, &host);
            }
        }
        out = replace(&PATTERNS.fqdn, &out, |caps| {
            if names::is_file_suffix(&caps["tld"]) {
                caps[0].to_owned()
            } else {
                self.marked(Kind::Host, &caps[0])
            }
        });
        out = replace(&PATTERNS.host_label, &out, |caps| {
            let value = &caps["value"];
            let token = self.marked(Kind::Host, value);
            caps[0].replace(value, &token)
        });
        self.scrub_names(&out)
    }

    /// A JSON value with every string (and every object key) scrubbed.
    pub fn scrub_json(&mut self, value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::String(s) => serde_json::Value::String(self.scrub(s)),
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(|v| self.scrub_json(v)).collect())
            }
            serde_json::Value::Object(map) => serde_json::Value::Object(
                map.iter()
                    .map(|(k, v)| (self.scrub(k), self.scrub_json(v)))
                    .collect(),
            ),
            // Numbers are kept: ports, sizes and counts are what the model reasons about. A
            // number that is an identifier (an SSN without dashes) is caught when it is a string.
            other => other.clone(),
        }
    }

    /// `text` from the model with every pseudonym of this consultation replaced by its original.
    ///
    /// A token of our shape that this consultation did not hand out (or a secret's) is an error:
    /// the model invented it, and an invented value must not reach a host.
    pub fn restore(&self, text: &str) -> Result<String, UnknownPseudonym> {
        let mut unknown = None;
        let restored = self.map_tokens(text, |token| {
            unknown.get_or_insert_with(|| token.to_owned());
            token.to_owned()
        });
        match unknown {
            Some(token) => Err(UnknownPseudonym { token }),
            None => Ok(restored),
        }
    }

    /// `text` with pseudonyms restored where known and left as they are otherwise (for showing
    /// the model's rationale to a person on the appliance).
    pub fn restore_lossy(&self, text: &str) -> String {
        self.map_tokens(text, str::to_owned)
    }

    /// Every token of our shape (not preceded by a letter or digit, so `PERSON_1_DATE_2` is two)
    /// replaced by its original, or by `unknown(token)`.
    fn map_tokens(&self, text: &str, mut unknown: impl FnMut(&str) -> String) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for found in PATTERNS.any_pseudonym.find_iter(text) {
            let glued = text[..found.start()]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric());
            if glued {
                continue;
            }
            out.push_str(&text[last..found.start()]);
            match self.backward.get(found.as_str()) {
                Some(original) => out.push_str(original),
                None => out.push_str(&unknown(found.as_str())),
            }
            last = found.end();
        }
        out.push_str(&text[last..]);
        out
    }

    /// How many distinct values of each kind were replaced, for evidence (never the values).
    pub fn counts(&self) -> Vec<(Kind, usize)> {
        Kind::ALL
            .into_iter()
            .filter_map(|kind| self.counters.get(&kind).map(|n| (kind, *n)))
            .collect()
    }

    /// `text` with every occurrence of the known host `needle` that is not part of a longer
    /// name (`pc1` in `pc1.lan` or `pc1:22`, not in `pc10` or `mypc1`) replaced.
    fn replace_whole(&mut self, text: &str, needle: &str, host: &str) -> String {
        let is_name_char = |c: char| c.is_alphanumeric() || c == '-' || c == '\u{1}';
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (start, _) in text.match_indices(needle) {
            if start < last {
                continue;
            }
            let end = start + needle.len();
            let before = text[..start].chars().next_back();
            let after = text[end..].chars().next();
            if before.is_some_and(is_name_char) || after.is_some_and(is_name_char) {
                continue;
            }
            out.push_str(&text[last..start]);
            out.push_str(&self.marked(Kind::Host, host));
            last = end;
        }
        out.push_str(&text[last..]);
        out
    }

    fn scrub_secrets(&mut self, text: &str) -> String {
        let mut out = replace(&PATTERNS.pem, text, |caps| {
            self.marked(Kind::Secret, &caps[0])
        });
        for regex in [
            &PATTERNS.url_userinfo,
            &PATTERNS.bearer,
            &PATTERNS.secret_assignment,
        ] {
            out = replace(regex, &out, |caps| {
                let value = &caps["value"];
                if value.eq_ignore_ascii_case("bearer") || value.eq_ignore_ascii_case("basic") {
                    return caps[0].to_owned();
                }
                let token = self.marked(Kind::Secret, value);
                caps[0].replace(value, &token)
            });
        }
        for regex in [&PATTERNS.token_shapes, &PATTERNS.random_string] {
            out = replace(regex, &out, |caps| {
                let value = &caps[0];
                if regex.as_str() == PATTERNS.random_string.as_str() && !looks_random(value) {
                    return value.to_owned();
                }
                self.marked(Kind::Secret, value)
            });
        }
        out
    }

    fn scrub_names(&mut self, text: &str) -> String {
        let words: Vec<(usize, usize)> = PATTERNS
            .word
            .find_iter(text)
            .map(|m| (m.start(), m.end()))
            .collect();
        let corpus: Vec<bool> = words
            .iter()
            .map(|&(start, end)| {
                !is_pseudonym_word(text, start, end) && names::is_name(&text[start..end])
            })
            .collect();
        let mut is_name = corpus.clone();
        // A capitalised word right next to a corpus name, and the capitalised words after a cue
        // (`Patient:`, `Dr.`, `name=`), are names too: "Ayasha Smith", "Patient: Quentaro".
        for idx in 0..words.len() {
            let (start, end) = words[idx];
            let word = &text[start..end];
            if is_name[idx]
                || is_pseudonym_word(text, start, end)
                || !starts_upper(word)
                || names::is_common_capitalised(word)
            {
                continue;
            }
            let next_to_name =
                (idx > 0 && corpus[idx - 1] && adjacent(text, words[idx - 1], words[idx]))
                    || (idx + 1 < words.len()
                        && corpus[idx + 1]
                        && adjacent(text, words[idx], words[idx + 1]));
            let after_cue = (1..=2).any(|back| {
                idx >= back
                    && names::is_cue(&text[words[idx - back].0..words[idx - back].1])
                    && (back == 1 || is_name[idx - 1])
            });
            if next_to_name || after_cue {
                is_name[idx] = true;
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (idx, &(start, end)) in words.iter().enumerate() {
            if !is_name[idx] {
                continue;
            }
            out.push_str(&text[last..start]);
            let token = self.marked(Kind::Person, &text[start..end]);
            out.push_str(&token);
            last = end;
        }
        out.push_str(&text[last..]);
        out
    }
}

const MARK_START: char = '\u{e000}';
const MARK_END: char = '\u{e001}';

/// Whether `text` is exactly one of our pseudonym tokens.
pub fn is_pseudonym(text: &str) -> bool {
    PATTERNS
        .any_pseudonym
        .find(text)
        .is_some_and(|m| m.start() == 0 && m.end() == text.len())
}

/// Every token of our shape in `text` (for tests and for checking what reached a prompt).
pub fn pseudonyms_in(text: &str) -> Vec<&str> {
    PATTERNS
        .any_pseudonym
        .find_iter(text)
        .map(|m| m.as_str())
        .collect()
}

struct Patterns {
    existing_tokens: Regex,
    any_pseudonym: Regex,
    pem: Regex,
    url_userinfo: Regex,
    secret_assignment: Regex,
    bearer: Regex,
    token_shapes: Regex,
    random_string: Regex,
    email: Regex,
    ssn: Regex,
    mbi: Regex,
    mac: Regex,
    ipv4: Regex,
    ipv6: Regex,
    labelled_mrn: Regex,
    labelled_insurance: Regex,
    date_iso: Regex,
    date_us: Regex,
    date_words: Regex,
    date_compact: Regex,
    phone: Regex,
    street: Regex,
    po_box: Regex,
    state_zip: Regex,
    prefixed_id: Regex,
    nine_digits: Regex,
    fqdn: Regex,
    host_label: Regex,
    word: Regex,
}

#[allow(
    clippy::unwrap_used,
    reason = "the patterns are constants; the unit tests compile every one"
)]
fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap()
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| {
    let labels = Kind::ALL.map(Kind::label).join("|");
    Patterns {
        existing_tokens: regex(&format!(r"\b(?:{labels})\x01[0-9]+\b")),
        any_pseudonym: regex(&format!(r"(?:{labels})_[0-9]+")),
        pem: regex(r"-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(?:-----END [A-Z0-9 ]+-----|\z)"),
        url_userinfo: regex(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]+:(?P<value>[^\s/@]+)@"),
        secret_assignment: regex(
            r#"(?i)\b[a-z0-9_.-]*(?:passw(?:or)?d|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|client[_-]?secret|credential|auth)[a-z0-9_.-]*["']?\s*[:=]\s*["']?(?P<value>[^\s"',;]{3,})"#,
        ),
        bearer: regex(r"(?i)\b(?:bearer|basic)\s+(?P<value>[A-Za-z0-9._~+/=-]{8,})"),
        token_shapes: regex(
            r"\b(?:AKIA[0-9A-Z]{16}|sk-(?:ant-)?[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)",
        ),
        random_string: regex(r"[A-Za-z0-9+/_=-]{24,}"),
        email: regex(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b"),
        ssn: regex(r"\b[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}\b"),
        mbi: regex(
            r"\b[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9][0-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9][0-9][AC-HJKMNP-RT-Y]{2}[0-9]{2}\b",
        ),
        mac: regex(r"(?i)\b[0-9a-f]{2}(?:[:-][0-9a-f]{2}){5}\b"),
        ipv4: regex(
            r"\b(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}\b",
        ),
        ipv6: regex(
            r"(?i)(?:\b[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){7}\b|\b(?:[0-9a-f]{1,4}:){1,6}:(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,5})?\b)",
        ),
        labelled_mrn: regex(
            r"(?i)\b(?:mrn|medical[ _-]?record(?:[ _-]?(?:number|no|num|#))?|patient[ _-]?(?:id|number|no|#)|chart[ _-]?(?:id|number|no|#))\s*[:=#_-]?\s*(?P<value>[A-Z0-9][A-Z0-9-]{3,})",
        ),
        labelled_insurance: regex(
            r"(?i)\b(?:member|policy|subscriber|group|insurance|insured|medicaid|medicare|plan|mbi|hicn)[ _-]?(?:id|no|num|number|#)?\s*[:=#_-]?\s*(?P<value>[A-Z0-9][A-Z0-9-]{4,})",
        ),
        date_iso: regex(
            r"\b(?:19|20)[0-9]{2}[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12][0-9]|3[01])(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?\b",
        ),
        date_us: regex(
            r"\b(?:0?[1-9]|1[0-2])[/.-](?:0?[1-9]|[12][0-9]|3[01])[/.-](?:19|20)?[0-9]{2}\b",
        ),
        date_words: regex(&format!(
            r"(?i)\b(?:{day}(?:st|nd|rd|th)?\s+{month}\.?,?\s+{year}|{month}\.?\s+{day}(?:st|nd|rd|th)?\b(?:,?\s+{year})?|{month}\.?\s+{year})\b",
            day = "(?:0?[1-9]|[12][0-9]|3[01])",
            month = "(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)",
            year = "(?:19|20)[0-9]{2}",
        )),
        date_compact: regex(r"\b(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])\b"),
        phone: regex(
            r"(?:\+?1[\s.-]?)?(?:\([0-9]{3}\)\s?|\b[0-9]{3}[\s.-])[0-9]{3}[\s.-][0-9]{4}\b",
        ),
        street: regex(
            r"\b[0-9]{1,6}\s+(?:[A-Z][A-Za-z]*\.?\s+){1,4}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|Circle|Cir|Highway|Hwy|Parkway|Pkwy|Square|Sq|Trail|Trl)\b\.?(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|#)\.?\s*[A-Za-z0-9-]+)?",
        ),
        po_box: regex(r"(?i)\bP\.?\s?O\.?\s+Box\s+[0-9]+\b"),
        state_zip: regex(
            r"\b(?:AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY)\s+[0-9]{5}(?:-[0-9]{4})?\b",
        ),
        prefixed_id: regex(r"\b[A-Z]{1,4}[0-9]{6,12}\b"),
        nine_digits: regex(r"\b[0-9]{9}\b"),
        fqdn: regex(
            r"(?i)\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?P<tld>[a-z][a-z0-9-]{1,62})\b",
        ),
        host_label: regex(
            r"(?i)\b(?:host(?:name)?|computer(?:name)?|machine|server|workstation|dc|node)\s*[:=]\s*(?P<value>[A-Za-z0-9][A-Za-z0-9-]{1,62})",
        ),
        word: regex(r"[A-Za-z][A-Za-z']*[A-Za-z]|[A-Za-z]"),
    }
});

fn replace(regex: &Regex, text: &str, mut with: impl FnMut(&Captures<'_>) -> String) -> String {
    regex
        .replace_all(text, |caps: &Captures<'_>| {
            // Never rewrite a pseudonym handed out by an earlier pattern, or read across one.
            if caps[0].contains([MARK_START, MARK_END]) {
                caps[0].to_owned()
            } else {
                with(caps)
            }
        })
        .into_owned()
}

/// A long string counts as a secret when it mixes letters and digits like a key does, not when
/// it is a word, a path segment or a run of one character class.
fn looks_random(value: &str) -> bool {
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let upper = value.chars().filter(char::is_ascii_uppercase).count();
    let lower = value.chars().filter(char::is_ascii_lowercase).count();
    let classes = [digits, upper, lower].iter().filter(|n| **n > 0).count();
    classes >= 2 && digits >= 3 && !value.contains("__")
}

fn is_pseudonym_word(text: &str, start: usize, _end: usize) -> bool {
    // A word inside a marked pseudonym (`PERSON` in `PERSON_1`) is ours.
    text[..start].ends_with(MARK_START)
}

fn starts_upper(word: &str) -> bool {
    word.chars().next().is_some_and(char::is_uppercase)
}

fn adjacent(text: &str, left: (usize, usize), right: (usize, usize)) -> bool {
    let between = &text[left.1..right.0];
    !between.is_empty()
        && between.len() <= 2
        && between
            .chars()
            .all(|c| matches!(c, ' ' | ',' | '\u{1}' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    #[track_caller]
    fn check(input: &str, expect: Expect) {
        let mut scrubber = Scrubber::new(&["frontdesk-pc3", "dc01.smithclinic.lan"]);
        let scrubbed = scrubber.scrub(input);
        expect.assert_eq(&scrubbed);
        // Everything but secrets comes back exactly.
        if !scrubbed.contains("SECRET_") {
            assert_eq!(scrubber.restore(&scrubbed).as_deref(), Ok(input));
        }
    }

    #[test]
    fn every_pattern_compiles() {
        let _ = PATTERNS.word.as_str();
    }

    #[test]
    fn file_paths_with_names_dates_and_record_numbers() {
        check(
            "/srv/scans/Smith_John_1961-04-12_MRN00482913.pdf",
            expect!["/srv/scans/PERSON_1_PERSON_2_DATE_1_MRN_1.pdf"],
        );
        check(
            "/home/jsmith/Patients/garcia-maria 03.14.1975 chart.docx",
            expect!["/home/PERSON_1/Patients/PERSON_2-PERSON_3 DATE_1 chart.docx"],
        );
    }

    #[test]
    fn free_text_log_lines() {
        check(
            "Jan 12 10:42:07 frontdesk-pc3 sshd[812]: Failed password for mjones from 10.0.4.17 port 52144",
            expect![
                "DATE_1 10:42:07 HOST_1 sshd[812]: Failed password for PERSON_1 from IP_1 port 52144"
            ],
        );
        check(
            "Patient: Quentaro Abernathy-Vell, DOB 04/12/1961, SSN 536-22-8741, phone (617) 555-0143, jane.doe@example.org",
            expect![
                "Patient: PERSON_1 PERSON_2-PERSON_3, DOB DATE_1, SSN SSN_1, phone PHONE_1, EMAIL_1"
            ],
        );
        check(
            "mailing address 42 Elm Street, Apt 4B, Springfield, MA 01103; member id: XEH918273645",
            expect!["mailing address ADDRESS_1, Springfield, ADDRESS_2; member id: INSURANCE_1"],
        );
    }

    #[test]
    fn credentials_are_replaced_and_never_restored() {
        let mut scrubber = Scrubber::new(&[]);
        let out = scrubber.scrub(
            "DB_PASSWORD=hunter2-Sup3r! url=https://admin:s3cr3t@db.clinic.lan/x key AKIAABCDEFGHIJKLMNOP Authorization: Bearer abcdef0123456789xyz",
        );
        expect!["DB_PASSWORD=SECRET_3 url=https://admin:SECRET_1@HOST_1/x key SECRET_4 Authorization: Bearer SECRET_2"].assert_eq(&out);
        assert_eq!(
            scrubber.restore("SECRET_1").map_err(|e| e.to_string()),
            Err("`SECRET_1` is not a pseudonym this request contained (or stands for a secret, which is never mapped back)".to_owned())
        );
    }

    #[test]
    fn technical_values_survive() {
        check(
            "auditd.service failed; unexpected_ports [8080, 31337]; /var/log/syslog 93% used; pool.ntp.org unreachable",
            expect![
                "auditd.service failed; unexpected_ports [8080, 31337]; /var/log/syslog 93% used; HOST_1 unreachable"
            ],
        );
    }

    #[test]
    fn known_hosts_are_replaced_as_whole_names_only() {
        let mut scrubber = Scrubber::new(&["pc1"]);
        expect![["HOST_1 HOST_1:22 ssh://HOST_1/ pc10 mypc1"]]
            .assert_eq(&scrubber.scrub("pc1 pc1:22 ssh://pc1/ pc10 mypc1"));
    }

    #[test]
    fn text_that_already_looks_like_a_pseudonym_is_itself_replaced() {
        check(
            "user PERSON_1 and HOST_2",
            expect!["user TOKEN_1 and TOKEN_2"],
        );
    }

    #[test]
    fn an_invented_pseudonym_is_an_error() {
        let mut scrubber = Scrubber::new(&[]);
        let _ = scrubber.scrub("John Smith");
        assert_eq!(scrubber.restore("PERSON_2"), Ok("Smith".to_owned()));
        assert_eq!(
            scrubber.restore("PERSON_3"),
            Err(UnknownPseudonym {
                token: "PERSON_3".to_owned()
            })
        );
    }
}
