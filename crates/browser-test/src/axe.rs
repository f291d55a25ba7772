//! axe-core's results as the harness reports them: the scripts that check for and run axe in
//! the page, the [`Violation`] type, and [`serious`].

use std::fmt;

use serde_json::Value;

/// One axe rule the page breaks, with the elements that break it.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The rule's id (`image-alt`, `label`, `color-contrast`, …).
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`, when axe gives one.
    pub impact: Option<String>,
    /// What the rule asks for, in one sentence.
    pub help: String,
    /// Each offending element: its CSS target, a space, and its HTML.
    pub nodes: Vec<String>,
}

/// The violations whose impact is `serious` or `critical`.
pub fn serious(violations: &[Violation]) -> Vec<&Violation> {
    violations
        .iter()
        .filter(|violation| matches!(violation.impact.as_deref(), Some("serious" | "critical")))
        .collect()
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let impact = self.impact.as_deref().unwrap_or("no impact given");
        write!(f, "{} ({impact}): {}", self.id, self.help)?;
        for node in &self.nodes {
            write!(f, "\n    {node}")?;
        }
        Ok(())
    }
}

/// Whether axe is already loaded in the page.
pub(crate) const IS_LOADED: &str =
    "return typeof window.axe === 'object' && typeof window.axe.run === 'function';";

/// Runs axe over the document and returns its violations in the shape [`violations`] reads.
pub(crate) const RUN: &str = "return window.axe.run(document, { resultTypes: ['violations'] })\
    .then((results) => results.violations.map((violation) => ({\
        id: violation.id,\
        impact: violation.impact ?? null,\
        help: violation.help,\
        nodes: violation.nodes.map((node) => node.target.join(' ') + ' ' + node.html),\
    })));";

/// Reads the answer of [`RUN`].
pub(crate) fn violations(answer: &Value) -> Result<Vec<Violation>, String> {
    let unexpected = || format!("unexpected answer from axe.run: {answer}");
    let Value::Array(items) = answer else {
        return Err(unexpected());
    };
    items
        .iter()
        .map(|item| {
            let text = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_owned);
            Ok(Violation {
                id: text("id").ok_or_else(unexpected)?,
                impact: text("impact"),
                help: text("help").ok_or_else(unexpected)?,
                nodes: item
                    .get("nodes")
                    .and_then(Value::as_array)
                    .ok_or_else(unexpected)?
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}
