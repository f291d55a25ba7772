//! The appliance's local API (`osirisd` ⇄ `osiris status` / `osiris-console`): every endpoint
//! declared once ([`endpoint`]), the wire types, and a small blocking client for the Unix socket.
//!
//! The protocol is HTTP/1.1 with JSON bodies on a Unix socket (default [`DEFAULT_SOCKET`]),
//! reachable by root and the `osiris` group only. Endpoints and their types are declared in
//! [`endpoint`] and described in `docs/LOCAL-API.md`; every path starts with `/v1/`. Times are Unix seconds (UTC).
//! A failed request answers with a non-2xx status and an [`ApiError`] body.

mod client;
pub mod endpoint;
mod types;

pub use client::{CLAIM_CODE_HEADER, Client, ClientError, UNLOCK_HEADER};
pub use endpoint::{Endpoint, Method};
pub use types::*;

/// Where the daemon listens unless the configuration says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/osiris/api.sock";
