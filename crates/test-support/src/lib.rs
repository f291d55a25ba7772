//! Test peers and helpers: a local OpenTimestamps calendar and Esplora server, and the reference Python parser.

pub mod calendar;
pub mod python;
pub mod winrm;
