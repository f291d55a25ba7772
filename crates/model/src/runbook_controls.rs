//! A runbook's framework controls as the `FRAMEWORK:id` references recorded in evidence and printed in reports.

use crate::control::Control;
use crate::runbook::Runbook;

impl Runbook {
    /// `["HIPAA:164.312(b)", "CIS:8.2", …]`: the runbook's controls in catalogue order.
    pub fn control_refs(&self) -> Vec<String> {
        self.controls.iter().map(Control::to_string).collect()
    }
}
