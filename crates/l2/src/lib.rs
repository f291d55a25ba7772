//! L2 healing: when no L1 rule fixes a failed check, an LLM proposes one registered runbook with
//! typed parameters, and deterministic guardrails outside the model decide whether it runs.
//!
//! The core is synchronous and pure: [`scrub`] rewrites everything that came from a host with
//! consistent pseudonyms, [`request`] builds the Anthropic Messages or OpenAI Chat Completions
//! body (the registered runbooks as one tool whose `runbook_id` is an `enum`, host data as a
//! delimited JSON document), [`reply`] reads the provider's answer, and [`guard`] validates the
//! plan and keeps the budget, rate limit and circuit breaker. [`client`] is the one IO part: the
//! HTTPS call with timeouts and retries. [`flywheel`] groups executed plans into patterns and
//! proposes the ones that keep working as L1 rules. docs/L2.md describes the whole flow.

pub mod client;
pub mod flywheel;
pub mod guard;
pub mod names;
pub mod reply;
pub mod request;
pub mod scrub;

pub use client::{ClientError, ClientSettings, Exchange, ProviderClient};
pub use guard::{
    Budget, Charge, Guard, GuardSettings, Plan, Price, Rejection, Reservation,
    SHELL_METACHARACTERS, Verdict, judge_reply, money_words,
};
pub use reply::{ParsedReply, ReplyError, ToolCall, Usage, parse_reply, usage_only};
pub use request::{HistoryEntry, Incident, Prepared, Provider, RequestSettings, prepare};
pub use scrub::{Kind, Scrubber, UnknownPseudonym};
