//! Test peers and helpers: a local OpenTimestamps calendar and Esplora server, a real SMTP server,
//! a throwaway PostgreSQL server,
//! the WinRM peer, the LLM API peer (Anthropic and OpenAI), the Microsoft Graph and Google Directory API peers, the reference Python parser, Wine for the Windows build, and the gate for tests
//! that need root.

pub mod aws;
pub mod calendar;
pub mod google;
pub mod graph;
pub mod lab;
pub mod llm;
pub mod okta;
pub mod postgres;
pub mod python;
pub mod rmm;
pub mod root;
pub mod smtp;
pub mod wine;
pub mod winrm;

pub use root::require_root;
