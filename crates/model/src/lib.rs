//! Pure domain model: targets, platforms, runbooks, parameters, framework controls and check outcomes.
//!
//! Nothing here does IO or knows how a script reaches a machine; facts go in, decisions come out.

mod control;
mod evaluate;
mod host;
mod param;
mod runbook;
mod runbook_controls;
mod target;
mod verdict;

pub use control::{Control, Framework, UnknownFramework};
pub use evaluate::{CheckOutcome, CheckStatus, all_hold, evaluate};
pub use host::{is_aws_region, is_valid_host, is_valid_user};
pub use param::{ParamError, ParamSpec, ParamType, ParamValue, ResolvedParams, resolve_params};
pub use runbook::{
    ExpectOp, Expectation, Operand, Runbook, Script, Severity, Shell, UnknownSeverity,
};
pub use target::{DeviceType, Platform, Target, UnknownPlatform};
pub use verdict::TargetVerdict;
