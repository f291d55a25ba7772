//! The HTTP server: the router, its shared state, and serving it over TLS (with the link CA's
//! client certificates accepted but optional, so enrollment works before an appliance has one)
//! or, on loopback only, plain HTTP.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Router};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sqlx::PgPool;

use crate::link::{self, LinkKeys, LinkState, PeerCert};

/// Connections served at once; more wait in the kernel's accept queue.
pub const MAX_CONNECTIONS: usize = 1024;
/// Time allowed for a TLS handshake and for a request's headers.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every handler can reach. Central Command keeps no state of its own: several instances
/// share one database.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database pool (connects lazily, so the server starts while PostgreSQL is down).
    pub pool: PgPool,
    /// The appliance link's keys, when `[link]` is configured.
    pub link: Option<Arc<LinkKeys>>,
    /// The remote L2 relay, when `[l2]` is configured.
    pub l2: Option<Arc<crate::l2_relay::L2Relay>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A certificate or key file.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration")]
    Tls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("client certificate verifier: {0}")]
    Verifier(String),
    /// Accepting connections failed.
    #[error("accepting connections")]
    Io(#[from] std::io::Error),
}

/// The router.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .with_state(state.clone())
        .merge(crate::api::router(crate::api::UserState {
            pool: state.pool.clone(),
            link: state.link.clone(),
        }))
        .merge(crate::web::router(crate::web::WebState {
            pool: state.pool.clone(),
            link: state.link.clone(),
            live_interval_ms: crate::web::LIVE_INTERVAL_MS,
        }));
    if let Some(keys) = state.link {
        let link_state = LinkState {
            pool: state.pool.clone(),
            keys,
        };
        router = router.merge(
            Router::new()
                .route(link_proto::path::ENROLL, post(link::enroll))
                .route(link_proto::path::PICKUP, post(link::pickup))
                .route(link_proto::path::PUSH, post(link::push))
                .route(link_proto::path::KIT_REQUESTS, post(link::kit_requests))
                .route(link_proto::path::MANIFEST, post(link::manifest_offer))
                .route(
                    link_proto::path::AGENT_RELEASES,
                    post(link::agent_release_offers),
                )
                .route(
                    link_proto::path::AGENT_RELEASE_BINARY,
                    post(link::agent_release_binary),
                )
                .route(link_proto::path::CHANNELS, post(link::channels))
                .route(
                    link_proto::path::OPERATOR_ACTIONS,
                    post(link::operator_actions),
                )
                .route(
                    link_proto::path::OPERATOR_ACTIONS_SEALED,
                    post(link::operator_actions_sealed),
                )
                .route(
                    link_proto::path::KIT_UPLOAD,
                    post(link::kit_upload).layer(DefaultBodyLimit::max(link_proto::MAX_KIT)),
                )
                .route(link_proto::path::PACKETS, post(link::packets::held))
                .route(link_proto::path::PACKET, post(link::packets::offer))
                .route(
                    link_proto::path::PACKET_FILE,
                    post(link::packets::file)
                        .layer(DefaultBodyLimit::max(link_proto::MAX_PACKET_FILE)),
                )
                .with_state(link_state),
        );
    }
    if let Some(relay) = state.l2 {
        router = router.merge(
            Router::new()
                .route("/v1/l2/plan", post(crate::l2_relay::plan))
                .with_state(crate::l2_relay::L2State {
                    pool: state.pool.clone(),
                    relay,
                }),
        );
    }
    router
        .layer(axum::middleware::map_response(close_after_refused_body))
        .layer(DefaultBodyLimit::max(link_proto::MAX_BODY))
}

/// A body refused for its size was not read to its end, so hyper closes the connection after
/// the answer; `Connection: close` tells the client, which otherwise may send its next request
/// on that connection as it closes and see the request fail.
async fn close_after_refused_body(
    mut response: axum::response::Response,
) -> axum::response::Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// 200 when this instance can reach the database, 503 otherwise (a load balancer then sends
/// traffic to another instance). Reveals nothing else, so it needs no login.
async fn healthz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let probe = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool);
    match tokio::time::timeout(Duration::from_secs(3), probe).await {
        Ok(Ok(1)) => (StatusCode::OK, "ok\n"),
        Ok(Ok(_)) | Ok(Err(_)) | Err(_) => {
            tracing::warn!("health check: the database is unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    }
}

/// Whether a private key is Ed25519 (which browsers do not accept in TLS).
pub fn is_ed25519(provider: &rustls::crypto::CryptoProvider, key: &PrivateKeyDer<'_>) -> bool {
    provider
        .key_provider
        .load_private_key(key.clone_key())
        .is_ok_and(|signing| signing.algorithm() == rustls::SignatureAlgorithm::ED25519)
}

/// The TLS configuration: the server's chain and key; client certificates verified against the
/// link CA when given, and optional (enrollment needs none; pushes check for one).
pub fn tls_config(
    cert_file: &Path,
    key_file: &Path,
    client_ca_der: Option<&[u8]>,
) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let pem_err = |path: &Path, message: String| ServeError::Pem {
        path: path.display().to_string(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(cert_file)
        .map_err(|err| pem_err(cert_file, err.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| pem_err(cert_file, err.to_string()))?;
    if chain.is_empty() {
        return Err(pem_err(cert_file, "holds no certificate".to_owned()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_file).map_err(|err| pem_err(key_file, err.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    if is_ed25519(&provider, &key) {
        tracing::warn!(
            key = %key_file.display(),
            "the server's TLS key is Ed25519: appliances accept it, but browsers refuse Ed25519 in TLS, so the partner pages will not open; use an ECDSA P-256 or RSA certificate"
        );
    }
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let config = match client_ca_der {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from(ca.to_vec()))?;
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .allow_unauthenticated()
            .build()
            .map_err(|err| ServeError::Verifier(err.to_string()))?;
            builder
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)?
        }
        None => builder.with_no_client_auth().with_single_cert(chain, key)?,
    };
    Ok(Arc::new(config))
}

/// Serves plain HTTP until `shutdown` resolves (loopback only: the configuration refuses
/// anything else without TLS). No peer ever has a client certificate here.
pub async fn serve_plain(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(listen = ?addr, tls = false, "serving");
    let app = router(state)
        .layer(axum::middleware::from_fn(client_addr_from_connection))
        .layer(Extension(PeerCert(None)));
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Plain serving knows the peer from axum's connect info; make it the [`ClientAddr`] the TLS
/// path sets directly.
async fn client_addr_from_connection(
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    request
        .extensions_mut()
        .insert(crate::api::ClientAddr(peer.ip()));
    next.run(request).await
}

/// Serves HTTPS until `shutdown` resolves.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(listen = ?addr, tls = true, "serving");
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let router = router(state);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => return Ok(()),
            permit = slots.clone().acquire_owned() => permit.map_err(|_| std::io::Error::other("closed"))?,
        };
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Answers are small: without TCP_NODELAY, Nagle and delayed ACKs add 40 ms to each.
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|cert| -> [u8; 32] {
                    <sha2::Sha256 as sha2::Digest>::digest(cert.as_ref()).into()
                });
            let service = hyper_util::service::TowerToHyperService::new(
                router
                    .layer(Extension(PeerCert(cert)))
                    .layer(Extension(crate::api::ClientAddr(peer.ip()))),
            );
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            if let Err(err) = served {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ed25519_server_key_is_told_apart_from_one_browsers_accept() {
        let provider = rustls::crypto::ring::default_provider();
        let key_of = |alg| {
            let pair = rcgen::KeyPair::generate_for(alg).unwrap();
            PrivateKeyDer::try_from(pair.serialize_der()).unwrap()
        };
        assert!(is_ed25519(&provider, &key_of(&rcgen::PKCS_ED25519)));
        assert!(!is_ed25519(
            &provider,
            &key_of(&rcgen::PKCS_ECDSA_P256_SHA256)
        ));
    }
}
