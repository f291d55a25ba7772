//! Test peers and helpers: a local OpenTimestamps calendar and Esplora server, a real SMTP server,
//! the WinRM peer, and the reference Python parser.

pub mod calendar;
pub mod lab;
pub mod python;
pub mod smtp;
pub mod winrm;
