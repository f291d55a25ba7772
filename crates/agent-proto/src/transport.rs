//! The connection settings both sides must set explicitly (tonic's defaults have no keepalive and
//! no stream limit), applied to tonic's server builder, endpoint and generated client/server.
//!
//! Values (docs/AGENT-PROTOCOL.md, "Transport"):
//!
//! | setting | gateway ([`ServerLimits::STANDARD`]) | agent ([`ClientLimits::STANDARD`]) |
//! |---|---|---|
//! | HTTP/2 PING interval, answer timeout | 60 s, 20 s | 30 s, 10 s (also while idle) |
//! | TCP keepalive | 120 s | 60 s |
//! | TLS handshake timeout / TCP connect timeout | 10 s | 10 s |
//! | time to answer a call's headers | 30 s | 30 s |
//! | concurrent streams per connection | 4 | (the gateway's) |
//! | header list | 16 KiB | 16 KiB |
//! | peer resets before the connection is closed | 20 pending, 64 errors | 64 errors |
//! | message size, both directions | [`MAX_MESSAGE_BYTES`] | [`MAX_MESSAGE_BYTES`] |
//!
//! A vanished agent is noticed by the gateway within 80 s; a vanished gateway by the agent within
//! 40 s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::server::TcpIncoming;
use tonic::transport::{
    Certificate, CertificateDer, Channel, Endpoint, Identity, Server, ServerTlsConfig,
};

use crate::limits::MAX_MESSAGE_BYTES;
use crate::v1::agent_gateway_client::AgentGatewayClient;
use crate::v1::agent_gateway_server::{AgentGateway, AgentGatewayServer};

/// The gateway's connection settings. [`ServerLimits::STANDARD`] is what a gateway uses; tests
/// shorten the timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// How long a connection may be silent before the gateway sends an HTTP/2 PING.
    pub keepalive_interval: Duration,
    /// How long the gateway waits for the PING's answer before it closes the connection.
    pub keepalive_timeout: Duration,
    /// The TCP keepalive idle time (a second line under HTTP/2 PINGs).
    pub tcp_keepalive: Duration,
    /// How long a client has to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// How long a call may take to produce its response headers (a whole unary call; the
    /// opening of a stream, not its life).
    pub request_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection (an agent needs one for `Connect`, one more now
    /// and then).
    pub max_concurrent_streams: u32,
    /// Largest header block accepted, in bytes.
    pub max_header_list_bytes: u32,
    /// Streams the client may open and reset before the gateway accepts them (rapid-reset
    /// defence) before the connection is closed.
    pub max_pending_accept_reset_streams: usize,
    /// Streams the gateway may reset for protocol errors before it closes the connection.
    pub max_local_error_reset_streams: usize,
}

impl ServerLimits {
    /// The gateway's settings.
    pub const STANDARD: Self = Self {
        keepalive_interval: Duration::from_secs(60),
        keepalive_timeout: Duration::from_secs(20),
        tcp_keepalive: Duration::from_secs(120),
        tls_handshake_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(30),
        max_concurrent_streams: 4,
        max_header_list_bytes: 16 * 1024,
        max_pending_accept_reset_streams: 20,
        max_local_error_reset_streams: 64,
    };
}

/// The agent's connection settings. [`ClientLimits::STANDARD`] is what an agent uses; tests
/// shorten the timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// How often the agent sends an HTTP/2 PING, whether or not a stream is open.
    pub keepalive_interval: Duration,
    /// How long it waits for the answer before it drops the connection (and reconnects).
    pub keepalive_timeout: Duration,
    /// The TCP keepalive idle time.
    pub tcp_keepalive: Duration,
    /// How long a TCP connect may take.
    pub connect_timeout: Duration,
    /// How long a call may take to produce its response headers.
    pub request_timeout: Duration,
    /// Largest header block accepted, in bytes.
    pub max_header_list_bytes: u32,
    /// Streams the agent may reset for protocol errors before it closes the connection.
    pub max_local_error_reset_streams: usize,
}

impl ClientLimits {
    /// The agent's settings.
    pub const STANDARD: Self = Self {
        keepalive_interval: Duration::from_secs(30),
        keepalive_timeout: Duration::from_secs(10),
        tcp_keepalive: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(30),
        max_header_list_bytes: 16 * 1024,
        max_local_error_reset_streams: 64,
    };
}

/// A tonic server builder with `limits` applied, HTTP/1 refused and Nagle off; the caller adds
/// [`server_tls`] and [`gateway_service`].
#[must_use]
pub fn server_builder(limits: &ServerLimits) -> Server {
    Server::builder()
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        .tcp_keepalive(Some(limits.tcp_keepalive))
        .tcp_nodelay(true)
        .timeout(limits.request_timeout)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_max_header_list_size(limits.max_header_list_bytes)
        .http2_max_pending_accept_reset_streams(Some(limits.max_pending_accept_reset_streams))
        .http2_max_local_error_reset_streams(Some(limits.max_local_error_reset_streams))
        .accept_http1(false)
}

/// Binds `addr` for the gateway with the TCP settings of `limits` (keepalive, no Nagle) applied to
/// every accepted connection; serve it with `serve_with_incoming`. Port 0 picks a free port
/// (`local_addr` tells which).
///
/// # Errors
/// When the address cannot be bound.
pub fn bind(addr: SocketAddr, limits: &ServerLimits) -> std::io::Result<TcpIncoming> {
    Ok(TcpIncoming::bind(addr)?
        .with_nodelay(Some(true))
        .with_keepalive(Some(limits.tcp_keepalive)))
}

/// The gateway's TLS: its certificate and key (`identity`), and the agent CA (`agent_ca`) that
/// every client certificate must chain to. A client certificate is optional at the TLS layer so
/// `Enroll` works without one; `Connect` asks for it with [`client_certificate`].
#[must_use]
pub fn server_tls(
    identity: Identity,
    agent_ca: Certificate,
    limits: &ServerLimits,
) -> ServerTlsConfig {
    ServerTlsConfig::new()
        .identity(identity)
        .client_ca_root(agent_ca)
        .client_auth_optional(true)
        .timeout(limits.tls_handshake_timeout)
}

/// `service` as a tonic service with [`MAX_MESSAGE_BYTES`] both ways.
#[must_use]
pub fn gateway_service<T: AgentGateway>(service: T) -> AgentGatewayServer<T> {
    AgentGatewayServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// An endpoint for the gateway at `uri` with `limits` applied; the caller adds TLS
/// (`tls_config`) and connects.
///
/// # Errors
/// When `uri` is not a valid URI.
pub fn endpoint(uri: &str, limits: &ClientLimits) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(uri.to_owned())?
        .http2_keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout)
        .keep_alive_while_idle(true)
        .tcp_keepalive(Some(limits.tcp_keepalive))
        .tcp_nodelay(true)
        .connect_timeout(limits.connect_timeout)
        .timeout(limits.request_timeout)
        .http2_max_header_list_size(limits.max_header_list_bytes)
        .http2_max_local_error_reset_streams(Some(limits.max_local_error_reset_streams)))
}

/// A client over `channel` with [`MAX_MESSAGE_BYTES`] both ways.
#[must_use]
pub fn gateway_client(channel: Channel) -> AgentGatewayClient<Channel> {
    AgentGatewayClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// The client certificate (leaf, DER) the caller presented, already verified against the agent CA
/// by the TLS handshake.
///
/// # Errors
/// `UNAUTHENTICATED` when the connection carries none (or is not TLS).
pub fn client_certificate<T>(
    request: &tonic::Request<T>,
) -> Result<CertificateDer<'static>, tonic::Status> {
    let chain: Option<Arc<Vec<CertificateDer<'static>>>> = request.peer_certs();
    chain
        .and_then(|chain| chain.first().cloned())
        .ok_or_else(|| {
            tonic::Status::unauthenticated(
                "Connect needs a client certificate issued by this appliance's agent CA; enroll first",
            )
        })
}
