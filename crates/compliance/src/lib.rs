//! Per-control compliance of each framework, computed from the evidence log, and the reports that say it.
//!
//! `Ledger` reads bundle lines (scans, attestations, exceptions) for one period, or whole days of
//! a day summary of them; `assess` turns a ledger and one framework's control catalogue into a
//! status per control; `render` writes that as HTML, CSV, OSCAL or PDF, each but CSV with a stamp
//! to make it again from; `packet` makes the month's packet of every framework. Everything here is pure: the caller reads the log and writes the files.

mod assess;
mod ledger;
pub mod packet;
mod proofs;
pub mod render;

pub use assess::{Assessment, CheckLine, ControlAssessment, ControlStatus, Figures, assess};
pub use ledger::{
    Attestation, CheckStatus, DayBundles, DayPlan, DayResult, Exception, Incident, LEDGER_KINDS,
    Ledger, LedgerError, Observation, Period, PeriodError, WEEKS, Week,
};
pub use proofs::{ConsistencyProof, InclusionProof, ProofTextError, Proofs, cited_bundles};
