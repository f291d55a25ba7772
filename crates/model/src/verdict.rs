//! What one target's check results say about the target as a whole: compliant, drifted, or not checked at all.
//!
//! The one rule, shared by the daemon's device list and the workstation summary in evidence:
//! every check in error means the scan failed (nothing was judged); otherwise any failed check means drift.

use crate::evaluate::CheckStatus;

/// The verdict on one target from its check results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetVerdict {
    /// No check failed (skipped checks and a scan with no applicable checks count as compliant).
    Compliant,
    /// At least one check failed.
    Drifted,
    /// Every check ended in error: the scan failed, so nothing is known about the target.
    ScanFailed,
}

impl TargetVerdict {
    /// Classifies a target by the statuses of its check results: all errors ⇒ scan failed, else any fail ⇒ drifted.
    pub fn of(statuses: impl IntoIterator<Item = CheckStatus>) -> TargetVerdict {
        let (mut total, mut errors, mut failures) = (0usize, 0usize, 0usize);
        for status in statuses {
            total += 1;
            match status {
                CheckStatus::Error => errors += 1,
                CheckStatus::Fail => failures += 1,
                CheckStatus::Pass | CheckStatus::Skipped => {}
            }
        }
        if total > 0 && errors == total {
            TargetVerdict::ScanFailed
        } else if failures > 0 {
            TargetVerdict::Drifted
        } else {
            TargetVerdict::Compliant
        }
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use crate::evaluate::CheckStatus;
    use crate::verdict::TargetVerdict;

    /// `input` is one letter per check result: p(ass), f(ail), e(rror), s(kipped).
    #[track_caller]
    fn check(input: &str, expect: Expect) {
        let statuses = input.chars().map(|letter| match letter {
            'p' => CheckStatus::Pass,
            'f' => CheckStatus::Fail,
            'e' => CheckStatus::Error,
            's' => CheckStatus::Skipped,
            other => panic!("unknown status letter {other:?} in the fixture"),
        });
        expect.assert_eq(&format!("{:?}", TargetVerdict::of(statuses)));
    }

    #[test]
    fn verdicts() {
        check("", expect!["Compliant"]);
        check("ppp", expect!["Compliant"]);
        check("ss", expect!["Compliant"]);
        check("psp", expect!["Compliant"]);
        check("pfp", expect!["Drifted"]);
        check("fff", expect!["Drifted"]);
        check("efe", expect!["Drifted"]);
        check("pe", expect!["Compliant"]);
        check("e", expect!["ScanFailed"]);
        check("eee", expect!["ScanFailed"]);
        check("ees", expect!["Compliant"]);
    }
}
