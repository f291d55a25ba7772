//! L3 escalation: telling a person what the appliance could not fix.
//!
//! `notification` is what is said; `payload` renders it for each channel's documented wire format
//! (pure); `policy` decides routing, de-duplication, reminders and retry back-off (pure, no clock);
//! `channel` delivers over SMTP (STARTTLS) and HTTPS and reports every attempt, so the caller can
//! record each notification as evidence.

pub mod channel;
pub mod notification;
pub mod payload;
pub mod policy;

pub use channel::{Attempt, Channel, ChannelKind, Delivery, EmailSecurity, SendError, deliver};
pub use notification::Notification;
pub use policy::{NotifyDecision, NotifyPolicy, SentState};
