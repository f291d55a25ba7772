//! Test peers and helpers: a local OpenTimestamps calendar and Esplora server, sandboxes.

pub mod calendar;
