//! The PDF report: the same content as the HTML, laid out on A4 pages with DejaVu Sans embedded
//! (Type 0 / CIDFontType2 with Identity-H and a ToUnicode map, so text is selectable and
//! extractable). Written with `pdf-writer` (6 crates, 7 s cold build) and `ttf-parser`.

use std::collections::BTreeMap;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

use crate::assess::{Assessment, ControlStatus};
use crate::ledger::Ledger;
use crate::render::stamp::{Stamp, evidence_text};
use crate::render::{
    ReportContext, consistency_text, needs_action, proofs_intro, rfc3339, sample_bundles,
    sample_devices, summary_sentences,
};

const REGULAR: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;

/// Renders the report as a PDF document.
///
/// # Panics
/// If the embedded fonts cannot be parsed, which the tests rule out.
pub fn pdf(assessment: &Assessment<'_>, ledger: &Ledger, cx: &ReportContext<'_>) -> Vec<u8> {
    let stamp = Stamp::new(assessment, ledger, cx);
    let mut doc = Layout::new();
    let framework = assessment.framework;
    let f = &assessment.figures;
    doc.para(
        &format!("{} compliance report", framework.name),
        Style::Bold,
        18.0,
        0.0,
        BLACK,
    );
    doc.para(
        &format!(
            "Site {} · period {} · state as of {}",
            cx.site,
            ledger.period().label,
            rfc3339(ledger.until())
        ),
        Style::Regular,
        10.0,
        0.0,
        GREY,
    );
    doc.gap(10.0);
    doc.para("Summary", Style::Bold, 14.0, 0.0, BLACK);
    doc.para(
        &format!(
            "Met {} · Failing {} · Partly checked {} · Needs attestation {} · No evidence {} · Could not check {} · Not applicable {}",
            f.met, f.failing, f.partial, f.needs_attestation, f.no_evidence, f.could_not_check, f.not_applicable
        ),
        Style::Bold,
        10.0,
        0.0,
        BLACK,
    );
    doc.gap(4.0);
    for sentence in summary_sentences(assessment, ledger) {
        doc.para(&sentence, Style::Regular, 11.0, 0.0, BLACK);
        doc.gap(3.0);
    }
    let failing: Vec<_> = assessment
        .controls
        .iter()
        .filter(|c| needs_action(c.status) && c.status == ControlStatus::Failing)
        .collect();
    if !failing.is_empty() {
        doc.gap(6.0);
        doc.para("Fix first", Style::Bold, 12.0, 0.0, BLACK);
        for control in failing {
            doc.para(
                &format!(
                    "{} {}: {}",
                    control.def.id,
                    control.def.title,
                    control.explanation()
                ),
                Style::Regular,
                10.0,
                10.0,
                BLACK,
            );
        }
    }

    doc.new_page();
    doc.para("Every control", Style::Bold, 14.0, 0.0, BLACK);
    let mut group = "";
    for control in &assessment.controls {
        if control.def.group != group {
            group = &control.def.group;
            doc.gap(6.0);
            doc.para(group, Style::Bold, 12.0, 0.0, BLACK);
        }
        doc.gap(4.0);
        let kind = control
            .def
            .kind
            .map(|k| format!(" ({})", k.as_str()))
            .unwrap_or_default();
        doc.para(
            &format!(
                "{}{kind} — {}",
                control.def.id,
                control.status.as_str().to_uppercase()
            ),
            Style::Bold,
            10.0,
            0.0,
            status_colour(control.status),
        );
        doc.para(&control.def.title, Style::Regular, 9.5, 10.0, BLACK);
        doc.para(&control.explanation(), Style::Regular, 9.0, 10.0, GREY);
        if !control.runbooks.is_empty() {
            doc.para(
                &format!("Trend (passing per week): {}", control.trend_text()),
                Style::Regular,
                8.0,
                10.0,
                GREY,
            );
        }
        for line in &control.checks {
            let exception = match line.exception {
                Some(e) => format!(
                    "; accepted by exception until {} (owner {}, bundle #{})",
                    e.expires, e.owner, e.seq
                ),
                None => String::new(),
            };
            let incident = line
                .incident
                .map(|i| {
                    format!(
                        "; open incident: escalated {} ({}), bundle #{}",
                        i.at.date(),
                        i.reason,
                        i.seq
                    )
                })
                .unwrap_or_default();
            doc.para(
                &format!(
                    "{} on {}: {} — observed {}; {} pass / {} fail; evidence bundle #{}{exception}{incident}",
                    line.check,
                    line.target,
                    line.status.as_str(),
                    line.observed,
                    line.passes,
                    line.fails,
                    line.seq
                ),
                Style::Regular,
                8.5,
                20.0,
                BLACK,
            );
        }
        if let Some(a) = control.attestation {
            let document = a
                .document
                .as_ref()
                .map(|(name, sha)| format!("; document {name} (SHA-256 {sha})"))
                .unwrap_or_default();
            doc.para(
                &format!(
                    "Attested by {} until {}: “{}”{document}; evidence bundle #{}",
                    a.by, a.expires, a.statement, a.seq
                ),
                Style::Regular,
                8.5,
                20.0,
                BLACK,
            );
        }
    }

    if !cx.samples.is_empty() {
        doc.new_page();
        doc.para("Auditor samples", Style::Bold, 14.0, 0.0, BLACK);
        for (sample, sample_ledger) in cx.samples {
            doc.gap(6.0);
            doc.para(
                &format!("As of {}", rfc3339(sample_ledger.until())),
                Style::Bold,
                12.0,
                0.0,
                BLACK,
            );
            for control in &sample.controls {
                let bundles: Vec<String> = sample_bundles(control)
                    .iter()
                    .map(|seq| format!("#{seq}"))
                    .collect();
                let devices = sample_devices(control);
                doc.para(
                    &format!(
                        "{} — {}; devices: {}; evidence: {}",
                        control.def.id,
                        control.status.as_str(),
                        if devices.is_empty() {
                            "none".to_owned()
                        } else {
                            devices.join(", ")
                        },
                        if bundles.is_empty() {
                            "none".to_owned()
                        } else {
                            format!("bundle {}", bundles.join(", "))
                        }
                    ),
                    Style::Regular,
                    8.5,
                    10.0,
                    status_colour(control.status),
                );
            }
        }
    }

    doc.new_page();
    doc.para("Technical appendix", Style::Bold, 14.0, 0.0, BLACK);
    for (term, value) in [
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
            "Made",
            format!("{} by osiris {}", rfc3339(cx.generated_at), cx.tool_version),
        ),
        ("Evidence summarised", evidence_text(&stamp, ledger)),
        (
            "Content digest",
            format!(
                "SHA-256 {} of this report's CSV rendering; osiris evidence verify-report makes this report again from the auditor kit and compares",
                stamp.content_sha256
            ),
        ),
    ] {
        doc.para(&format!("{term}: {value}"), Style::Regular, 9.5, 0.0, BLACK);
    }
    doc.gap(6.0);
    match cx.checkpoint {
        Some((size, note)) => {
            doc.para(
                &format!("Every bundle number above is a leaf of the evidence log; this signed checkpoint covers the first {size} bundles (verify with osiris evidence verify on the auditor kit):"),
                Style::Regular,
                9.5,
                0.0,
                BLACK,
            );
            for line in note.lines() {
                doc.para(line, Style::Regular, 8.5, 10.0, BLACK);
            }
        }
        None => doc.para(
            "No checkpoint covers this evidence yet.",
            Style::Regular,
            9.5,
            0.0,
            BLACK,
        ),
    }
    if let Some(consistency) = &cx.proofs.consistency {
        doc.gap(6.0);
        doc.para(
            &consistency_text(consistency),
            Style::Regular,
            8.0,
            0.0,
            BLACK,
        );
    }
    if cx.checkpoint.is_some() {
        doc.gap(6.0);
        doc.para(&proofs_intro(cx.proofs), Style::Regular, 8.0, 0.0, BLACK);
        // Compactly: the bundle and its leaf hash; the audit paths are in this PDF's stamp
        // (`/OsirisReport`), which `osiris evidence verify-report` checks, and in the HTML, CSV
        // and OSCAL renderings.
        doc.para(
            "The audit paths are in this document's stamp (document information /OsirisReport), which osiris evidence verify-report checks against the auditor kit.",
            Style::Regular,
            8.0,
            0.0,
            BLACK,
        );
        for chunk in cx.proofs.inclusion.chunks(2) {
            let line: Vec<String> = chunk
                .iter()
                .map(|proof| format!("#{} {}", proof.seq, proof.leaf))
                .collect();
            doc.para(&line.join("   "), Style::Regular, 5.5, 10.0, BLACK);
        }
    }
    doc.finish(
        &format!(
            "{} — {} — {}",
            framework.name,
            cx.site,
            ledger.period().label
        ),
        &stamp.encode(),
    )
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Style {
    Regular,
    Bold,
}

type Rgb = (f32, f32, f32);
const BLACK: Rgb = (0.0, 0.0, 0.0);
const GREY: Rgb = (0.33, 0.33, 0.33);

fn status_colour(status: ControlStatus) -> Rgb {
    match status {
        ControlStatus::Met => (0.0, 0.45, 0.1),
        ControlStatus::Failing => (0.75, 0.0, 0.0),
        ControlStatus::Partial | ControlStatus::NeedsAttestation => (0.6, 0.4, 0.0),
        ControlStatus::NoEvidence | ControlStatus::CouldNotCheck | ControlStatus::NotApplicable => {
            GREY
        }
    }
}

/// Lines of text placed top to bottom on A4 pages.
struct Layout {
    fonts: [ttf_parser::Face<'static>; 2],
    pages: Vec<Content>,
    y: f32,
    /// Glyphs used per font, with the character each stands for (for ToUnicode and widths).
    used: [BTreeMap<u16, char>; 2],
}

impl Layout {
    fn new() -> Layout {
        let face = |bytes: &'static [u8]| {
            ttf_parser::Face::parse(bytes, 0).unwrap_or_else(|e| panic!("embedded font: {e}"))
        };
        Layout {
            fonts: [face(REGULAR), face(BOLD)],
            pages: vec![Content::new()],
            y: PAGE_HEIGHT - MARGIN,
            used: [BTreeMap::new(), BTreeMap::new()],
        }
    }

    fn gap(&mut self, points: f32) {
        self.y -= points;
    }

    fn new_page(&mut self) {
        self.pages.push(Content::new());
        self.y = PAGE_HEIGHT - MARGIN;
    }

    /// A paragraph wrapped to the page width at `indent`.
    fn para(&mut self, text: &str, style: Style, size: f32, indent: f32, colour: Rgb) {
        let width = PAGE_WIDTH - 2.0 * MARGIN - indent;
        for line in self.wrap(text, style, size, width) {
            let leading = size * 1.3;
            if self.y - leading < MARGIN {
                self.new_page();
            }
            self.y -= leading;
            let glyphs = self.glyphs(&line, style);
            let y = self.y;
            let content = self.pages.last_mut().unwrap_or_else(|| unreachable!());
            content.set_fill_rgb(colour.0, colour.1, colour.2);
            content
                .begin_text()
                .set_font(font_name(style), size)
                .next_line(MARGIN + indent, y)
                .show(Str(&glyphs))
                .end_text();
        }
    }

    fn glyphs(&mut self, line: &str, style: Style) -> Vec<u8> {
        let idx = style as usize;
        let mut res = Vec::with_capacity(line.len() * 2);
        for c in line.chars() {
            let gid = self.fonts[idx].glyph_index(c).map_or(0, |g| g.0);
            self.used[idx].entry(gid).or_insert(c);
            res.extend_from_slice(&gid.to_be_bytes());
        }
        res
    }

    fn advance(&self, c: char, style: Style, size: f32) -> f32 {
        let face = &self.fonts[style as usize];
        let gid = face.glyph_index(c).unwrap_or(ttf_parser::GlyphId(0));
        f32::from(face.glyph_hor_advance(gid).unwrap_or(0)) * size / f32::from(face.units_per_em())
    }

    /// Greedy word wrap; a word longer than the line is broken by characters.
    fn wrap(&self, text: &str, style: Style, size: f32, width: f32) -> Vec<String> {
        let space = self.advance(' ', style, size);
        let mut lines = Vec::new();
        for paragraph in text.lines() {
            let mut line = String::new();
            let mut line_width = 0.0;
            for word in paragraph.split_whitespace() {
                let word_width: f32 = word.chars().map(|c| self.advance(c, style, size)).sum();
                let needed = if line.is_empty() {
                    word_width
                } else {
                    line_width + space + word_width
                };
                if needed <= width {
                    if !line.is_empty() {
                        line.push(' ');
                    }
                    line.push_str(word);
                    line_width = needed;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    line_width = 0.0;
                }
                for c in word.chars() {
                    let w = self.advance(c, style, size);
                    if line_width + w > width && !line.is_empty() {
                        lines.push(std::mem::take(&mut line));
                        line_width = 0.0;
                    }
                    line.push(c);
                    line_width += w;
                }
            }
            lines.push(line);
        }
        lines
    }

    fn finish(mut self, title: &str, stamp: &str) -> Vec<u8> {
        let n_pages = self.pages.len();
        // Page numbers at the foot of each page.
        let pages = std::mem::take(&mut self.pages);
        let mut contents = Vec::with_capacity(n_pages);
        for (idx, mut content) in pages.into_iter().enumerate() {
            let footer = format!("{title} — page {} of {n_pages}", idx + 1);
            let glyphs = self.glyphs(&footer, Style::Regular);
            content.set_fill_rgb(GREY.0, GREY.1, GREY.2);
            content
                .begin_text()
                .set_font(font_name(Style::Regular), 8.0)
                .next_line(MARGIN, MARGIN / 2.0)
                .show(Str(&glyphs))
                .end_text();
            contents.push(content.finish());
        }

        let mut next = 1;
        let mut alloc = || {
            let id = Ref::new(next);
            next += 1;
            id
        };
        let catalog_id = alloc();
        let tree_id = alloc();
        let info_id = alloc();
        let font_ids: Vec<[Ref; 6]> = (0..2)
            .map(|_| [alloc(), alloc(), alloc(), alloc(), alloc(), alloc()])
            .collect();
        let page_ids: Vec<(Ref, Ref)> = (0..n_pages).map(|_| (alloc(), alloc())).collect();

        let mut pdf = Pdf::new();
        pdf.catalog(catalog_id).pages(tree_id);
        pdf.document_info(info_id)
            .title(pdf_writer::TextStr(title))
            .producer(pdf_writer::TextStr("osiris"))
            .pair(Name(b"OsirisReport"), pdf_writer::TextStr(stamp));
        pdf.pages(tree_id)
            .kids(page_ids.iter().map(|(page, _)| *page))
            .count(n_pages as i32);
        for ((page_id, content_id), content) in page_ids.iter().zip(&contents) {
            let mut page = pdf.page(*page_id);
            page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
                .parent(tree_id)
                .contents(*content_id);
            let mut resources = page.resources();
            let mut fonts = resources.fonts();
            fonts.pair(font_name(Style::Regular), font_ids[0][0]);
            fonts.pair(font_name(Style::Bold), font_ids[1][0]);
            fonts.finish();
            resources.finish();
            page.finish();
            pdf.stream(*content_id, content);
        }
        for (idx, (style, bytes, base)) in [
            (Style::Regular, REGULAR, "DejaVuSans"),
            (Style::Bold, BOLD, "DejaVuSans-Bold"),
        ]
        .into_iter()
        .enumerate()
        {
            let [type0, cid, descriptor, file, cmap, _] = font_ids[idx];
            let face = &self.fonts[style as usize];
            let scale = 1000.0 / f32::from(face.units_per_em());
            let system_info = SystemInfo {
                registry: Str(b"Adobe"),
                ordering: Str(b"Identity"),
                supplement: 0,
            };
            pdf.type0_font(type0)
                .base_font(Name(base.as_bytes()))
                .encoding_predefined(Name(b"Identity-H"))
                .descendant_font(cid)
                .to_unicode(cmap);
            let mut cid_font = pdf.cid_font(cid);
            cid_font
                .subtype(CidFontType::Type2)
                .base_font(Name(base.as_bytes()))
                .system_info(system_info)
                .font_descriptor(descriptor)
                .default_width(0.0)
                .cid_to_gid_map_predefined(Name(b"Identity"));
            {
                let mut widths = cid_font.widths();
                for gid in self.used[idx].keys() {
                    let advance = face
                        .glyph_hor_advance(ttf_parser::GlyphId(*gid))
                        .unwrap_or(0);
                    widths.consecutive(*gid, [f32::from(advance) * scale]);
                }
            }
            cid_font.finish();
            let bbox = face.global_bounding_box();
            pdf.font_descriptor(descriptor)
                .name(Name(base.as_bytes()))
                .flags(FontFlags::NON_SYMBOLIC)
                .bbox(Rect::new(
                    f32::from(bbox.x_min) * scale,
                    f32::from(bbox.y_min) * scale,
                    f32::from(bbox.x_max) * scale,
                    f32::from(bbox.y_max) * scale,
                ))
                .italic_angle(0.0)
                .ascent(f32::from(face.ascender()) * scale)
                .descent(f32::from(face.descender()) * scale)
                .cap_height(f32::from(face.capital_height().unwrap_or(700)) * scale)
                .stem_v(if style == Style::Bold { 120.0 } else { 80.0 })
                .font_file2(file);
            pdf.stream(file, bytes)
                .pair(Name(b"Length1"), bytes.len() as i32);
            let mut unicode = pdf_writer::types::UnicodeCmap::new(
                Name(b"Osiris-UCS"),
                SystemInfo {
                    registry: Str(b"Adobe"),
                    ordering: Str(b"UCS"),
                    supplement: 0,
                },
            );
            for (gid, c) in &self.used[idx] {
                unicode.pair(*gid, *c);
            }
            pdf.cmap(cmap, &unicode.finish());
        }
        pdf.finish()
    }
}

fn font_name(style: Style) -> Name<'static> {
    match style {
        Style::Regular => Name(b"F1"),
        Style::Bold => Name(b"F2"),
    }
}
