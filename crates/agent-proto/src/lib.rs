//! The agent gateway's gRPC contract (`osiris.agent.v1`, `proto/osiris/agent/v1/agent.proto`):
//! the generated types, client and server, the protocol's limits, validation of every incoming
//! message, the canonical signing bytes of a check result, and the connection settings both
//! sides apply. docs/AGENT-PROTOCOL.md is the normative description.
//!
//! It knows nothing of the appliance or the agent: no store, no SQL, no checks, no daemon.
//!
//! Build cost, measured on the project's machine kind (2 cores, Rust 1.98, fresh target directory,
//! `cargo build -p agent-proto`, dev profile): 31.6 s wall clock (53 s user, 7.5 s system),
//! 130 crates compiled, of which the heavy ones are tokio, hyper, h2, rustls/ring, axum (tonic's
//! router), syn and prost-build with petgraph and regex for the build script, and nine
//! `protoc-bin-vendored-*` crates that only carry protoc binaries (no system protoc is needed).
//!
//! Generated code is not committed: `build.rs` regenerates it from the `.proto` on every build with
//! the vendored protoc, so it cannot go stale and needs no codegen check. The client is built with
//! [`gateway_client`] over [`endpoint`] (the generated `connect(uri)` constructor is switched off:
//! it would clash with the `Connect` call).

mod identity;
pub mod limits;
mod signing;
mod transport;
mod validate;

/// The generated protobuf types, client (`agent_gateway_client`) and server
/// (`agent_gateway_server`) of `osiris.agent.v1`.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/osiris.agent.v1.rs"));
}

pub use identity::{AGENT_URI_PREFIX, CaPin, CaPinError, GATEWAY_TLS_NAME};
pub use signing::{
    RESULT_SIGNING_DOMAIN, SignatureError, device_key, result_signing_bytes, sign_result,
    verify_result,
};
pub use transport::{
    ClientLimits, ServerLimits, bind, client_certificate, endpoint, gateway_client,
    gateway_service, server_builder, server_tls,
};
pub use validate::{Validate, ValidationError, check_encoded_size, check_in_flight};
