//! The HTTP server: the router and its shared state. Today it answers `/healthz` only; every
//! further route is added behind the session and tenant-scope layers.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use sqlx::PgPool;

/// What every handler can reach. Central Command keeps no state of its own: several instances
/// share one database.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database pool (connects lazily, so the server starts while PostgreSQL is down).
    pub pool: PgPool,
}

/// The router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(state)
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

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(listen = ?addr, "serving");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
