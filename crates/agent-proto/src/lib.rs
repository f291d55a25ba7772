//! The agent gateway's gRPC contract (`osiris.agent.v1`, `proto/osiris/agent/v1/agent.proto`):
//! the generated types, client and server, the protocol's limits, validation of every incoming
//! message, the canonical signing bytes of a check result, and the connection settings both
//! sides apply. docs/AGENT-PROTOCOL.md is the normative description.
//!
//! It knows nothing of the appliance or the agent: no store, no SQL, no checks, no daemon.
//!
//! Build cost (measured: TODO).

pub mod limits;
mod signing;
mod transport;
mod validate;

/// The generated protobuf types, client (`agent_gateway_client`) and server
/// (`agent_gateway_server`) of `osiris.agent.v1`.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/osiris.agent.v1.rs"));
}

pub use signing::{
    RESULT_SIGNING_DOMAIN, SignatureError, device_key, result_signing_bytes, sign_result,
    verify_result,
};
pub use transport::{
    ClientLimits, ServerLimits, bind, client_certificate, endpoint, gateway_client,
    gateway_service, server_builder, server_tls,
};
pub use validate::{Validate, ValidationError, check_encoded_size, check_in_flight};
