//! The HTML report: one self-contained page (no scripts, no external resources), every value
//! escaped, the owner's summary first, then every control, then the technical appendix.

use std::fmt::Write as _;

use crate::assess::{Assessment, ControlStatus};
use crate::ledger::{CheckStatus, Ledger};
use crate::render::stamp::{Stamp, evidence_text};
use crate::render::{
    ReportContext, consistency_text, needs_action, proofs_intro, rfc3339, sample_bundles,
    sample_devices, summary_sentences,
};

/// Renders the report as one HTML document, with an "Auditor samples" section when the context
/// has samples: for each sample moment, every control's status then and the evidence bundles
/// behind it.
pub fn html(assessment: &Assessment<'_>, ledger: &Ledger, cx: &ReportContext<'_>) -> String {
    let framework = assessment.framework;
    let f = &assessment.figures;
    let samples = cx.samples;
    let stamp = Stamp::new(assessment, ledger, cx);
    let mut out = String::with_capacity(64 * 1024);
    let title = format!(
        "{} compliance report — {} — {}",
        framework.name,
        cx.site,
        ledger.period().label
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"osiris-report\" content=\"{}\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&stamp.encode()),
        esc(&title)
    );
    let _ = writeln!(out, "<h1>{}</h1>", esc(&title));
    let _ = writeln!(
        out,
        "<p class=\"meta\">Site <b>{}</b> · period {} ({} to {}) · state as of {} · made {} by osiris {}</p>",
        esc(cx.site),
        esc(&ledger.period().label),
        esc(&rfc3339(ledger.period().start)),
        esc(&rfc3339(ledger.period().end)),
        esc(&rfc3339(ledger.until())),
        esc(&rfc3339(cx.generated_at)),
        esc(cx.tool_version)
    );

    // Page one: the practice owner's summary.
    out.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n");
    let _ = writeln!(
        out,
        "<table class=\"figures\"><tr><th>Met</th><th>Failing</th><th>Partly checked</th><th>Needs attestation</th><th>No evidence</th><th>Could not check</th><th>Not applicable</th></tr>\n<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        f.met,
        f.failing,
        f.partial,
        f.needs_attestation,
        f.no_evidence,
        f.could_not_check,
        f.not_applicable
    );
    for sentence in summary_sentences(assessment, ledger) {
        let _ = writeln!(out, "<p>{}</p>", esc(&sentence));
    }
    let action: Vec<_> = assessment
        .controls
        .iter()
        .filter(|c| needs_action(c.status))
        .collect();
    let failing: Vec<_> = action
        .iter()
        .filter(|c| c.status == ControlStatus::Failing)
        .collect();
    if !failing.is_empty() {
        out.push_str("<h3>Fix first</h3>\n<ul>\n");
        for control in failing {
            let _ = writeln!(
                out,
                "<li><a href=\"#{}\">{}</a> {}: {}</li>",
                anchor(&control.def.id),
                esc(&control.def.id),
                esc(&control.def.title),
                esc(&control.explanation())
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");

    // Every control.
    out.push_str("<section id=\"controls\">\n<h2>Every control</h2>\n");
    let mut group = "";
    for control in &assessment.controls {
        if control.def.group != group {
            if !group.is_empty() {
                out.push_str("</tbody></table>\n");
            }
            group = &control.def.group;
            let _ = writeln!(
                out,
                "<h3>{}</h3>\n<table class=\"controls\"><thead><tr><th>Control</th><th>Status</th><th>What stands behind it</th></tr></thead><tbody>",
                esc(group)
            );
        }
        let kind = control
            .def
            .kind
            .map(|k| format!(" <span class=\"kind\">({})</span>", k.as_str()))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr id=\"{}\" class=\"{}\"><td><b>{}</b>{kind}<br>{}</td><td class=\"status\">{}</td><td>{}",
            anchor(&control.def.id),
            status_class(control.status),
            esc(&control.def.id),
            esc(&control.def.title),
            esc(control.status.as_str()),
            esc(&control.explanation())
        );
        if !control.runbooks.is_empty() {
            let runbooks: Vec<String> = control
                .runbooks
                .iter()
                .map(|(id, partial)| match partial {
                    Some(gap) => format!("{} (partial: {})", esc(id), esc(gap)),
                    None => esc(id),
                })
                .collect();
            let _ = write!(out, "<br><small>Checks: {}</small>", runbooks.join(", "));
            let _ = write!(
                out,
                "<br><small>Trend (share of passing results per week): {}</small>",
                esc(&control.trend_text())
            );
        }
        if !control.checks.is_empty() {
            out.push_str("<ul class=\"checks\">");
            for line in &control.checks {
                let exception = match (line.exception, line.expired_exception) {
                    (Some(e), _) => format!(
                        " — accepted by exception until {} (owner {}: {}; compensating: {}; bundle #{})",
                        e.expires,
                        esc(&e.owner),
                        esc(&e.reason),
                        esc(&e.compensating),
                        e.seq
                    ),
                    (None, Some(e)) => format!(
                        " — exception expired on {} (owner {}), the finding counts again",
                        e.expires,
                        esc(&e.owner)
                    ),
                    (None, None) => String::new(),
                };
                let incident = line
                    .incident
                    .map(|i| {
                        format!(
                            " — <b>open incident</b>: escalated {} ({}), bundle #{}",
                            i.at.date(),
                            esc(&i.reason),
                            i.seq
                        )
                    })
                    .unwrap_or_default();
                let _ = write!(
                    out,
                    "<li class=\"{}\">{} on <b>{}</b>: {} — observed <code>{}</code>; {} pass / {} fail in the period; evidence bundle #{}{exception}{incident}</li>",
                    check_class(line.status),
                    esc(line.check),
                    esc(line.target),
                    esc(line.status.as_str()),
                    esc(line.observed),
                    line.passes,
                    line.fails,
                    line.seq
                );
            }
            out.push_str("</ul>");
        }
        if let Some(a) = control.attestation {
            let document = a
                .document
                .as_ref()
                .map(|(name, sha)| format!("; document {} (SHA-256 {})", esc(name), esc(sha)))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<p class=\"attestation\">Attested by {} on {} until {}: “{}”{document}; evidence bundle #{}</p>",
                esc(&a.by),
                esc(&rfc3339(a.at)),
                a.expires,
                esc(&a.statement),
                a.seq
            );
        }
        out.push_str("</td></tr>\n");
    }
    if !group.is_empty() {
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</section>\n");

    if !samples.is_empty() {
        out.push_str("<section id=\"samples\">\n<h2>Auditor samples</h2>\n");
        for (sample, sample_ledger) in samples {
            let _ = writeln!(
                out,
                "<h3>As of {}</h3>\n<table class=\"samples\"><thead><tr><th>Control</th><th>Status then</th><th>Devices</th><th>Evidence then</th></tr></thead><tbody>",
                esc(&rfc3339(sample_ledger.until()))
            );
            for control in &sample.controls {
                let bundles = sample_bundles(control);
                let evidence: Vec<String> = bundles.iter().map(|seq| format!("#{seq}")).collect();
                let _ = writeln!(
                    out,
                    "<tr class=\"{}\"><td>{}</td><td class=\"status\">{}</td><td>{}</td><td>{}</td></tr>",
                    status_class(control.status),
                    esc(&control.def.id),
                    esc(control.status.as_str()),
                    esc(&sample_devices(control).join(", ")),
                    if evidence.is_empty() {
                        "none".to_owned()
                    } else {
                        format!("bundle {}", evidence.join(", "))
                    }
                );
            }
            out.push_str("</tbody></table>\n");
        }
        out.push_str("</section>\n");
    }

    // Technical appendix for the MSP.
    out.push_str("<section id=\"appendix\">\n<h2>Technical appendix</h2>\n<dl>\n");
    let rows = [
        (
            "Framework",
            format!("{} — {}", framework.name, framework.version),
        ),
        ("Framework text", framework.source.clone()),
        (
            "Control catalogue version",
            cx.frameworks_version.to_owned(),
        ),
        ("Runbook catalogue version", cx.catalog_version.to_owned()),
        ("Evidence log", cx.origin.to_owned()),
        ("Appliance key id", cx.key_id.to_owned()),
        (
            "Newest bundle read",
            ledger
                .newest_seq()
                .map_or("none".to_owned(), |seq| format!("#{seq}")),
        ),
        ("Evidence summarised", evidence_text(&stamp, ledger)),
        (
            "Content digest",
            format!(
                "SHA-256 {} of this report's CSV rendering; `osiris evidence verify-report` makes this report again from the auditor kit and compares",
                stamp.content_sha256
            ),
        ),
    ];
    for (term, value) in rows {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", esc(term), esc(&value));
    }
    out.push_str("</dl>\n");
    match cx.checkpoint {
        Some((size, note)) => {
            let _ = writeln!(
                out,
                "<p>Every bundle number above is a leaf of the evidence log; this signed checkpoint covers the first {size} bundles. Verify with <code>osiris evidence verify</code> on the auditor kit.</p>\n<pre class=\"checkpoint\">{}</pre>",
                esc(note)
            );
        }
        None => out.push_str("<p>No checkpoint covers this evidence yet.</p>\n"),
    }
    let proofs = cx.proofs;
    if let Some(consistency) = &proofs.consistency {
        let _ = writeln!(
            out,
            "<p class=\"consistency\"><code>{}</code></p>",
            esc(&consistency_text(consistency))
        );
    }
    if cx.checkpoint.is_some() {
        let _ = writeln!(
            out,
            "<p>{}</p>\n<table class=\"proofs\"><thead><tr><th>Bundle</th><th>Leaf hash</th><th>Audit path</th></tr></thead><tbody>",
            esc(&proofs_intro(proofs))
        );
        for proof in &proofs.inclusion {
            let _ = writeln!(
                out,
                "<tr id=\"proof-{}\"><td>#{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                proof.seq,
                proof.seq,
                esc(&proof.leaf),
                esc(&proof.path.join(" "))
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</section>\n</body>\n</html>\n");
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#111;line-height:1.4}\
h1{font-size:1.5rem}.meta{color:#555}table{border-collapse:collapse;width:100%;margin:.5rem 0}\
th,td{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top;text-align:left}\
.figures td{font-size:1.4rem;text-align:center}.kind{color:#555;font-size:.85em}\
tr.failing .status{background:#fdd}tr.met .status{background:#dfd}tr.partial .status,tr.attest .status{background:#ffd}\
tr.unknown .status{background:#eee}code{word-break:break-all}.proofs{font-size:.7em}pre{white-space:pre-wrap}\
@media print{section{page-break-after:always}}";

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut res = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => res.push_str("&amp;"),
            '<' => res.push_str("&lt;"),
            '>' => res.push_str("&gt;"),
            '"' => res.push_str("&quot;"),
            '\'' => res.push_str("&#39;"),
            _ => res.push(c),
        }
    }
    res
}

/// A fragment id made of safe characters only.
fn anchor(id: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("c-{safe}")
}

fn status_class(status: ControlStatus) -> &'static str {
    match status {
        ControlStatus::Met => "met",
        ControlStatus::Failing => "failing",
        ControlStatus::Partial => "partial",
        ControlStatus::NeedsAttestation => "attest",
        ControlStatus::NoEvidence | ControlStatus::CouldNotCheck => "unknown",
        ControlStatus::NotApplicable => "na",
    }
}

fn check_class(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Pass => "pass",
        CheckStatus::Fail => "fail",
        CheckStatus::Error => "error",
        CheckStatus::Skipped => "skipped",
    }
}
