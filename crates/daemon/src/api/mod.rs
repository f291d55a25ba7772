//! The local API: HTTP/1.1 + JSON on a Unix socket that only root, the daemon's own user and the
//! configured group may use (`socket`). Each endpoint of `api::endpoint` is bound here to its
//! handler: reads of the live state (`read`), operator actions, each sealed as evidence before
//! it takes effect (`actions`), evidence export (`export`) and the first-boot wizard
//! (`crate::setup`). Handlers never block an async worker: slow work runs on blocking threads.

mod actions;
mod export;
mod read;
mod socket;

use std::sync::Arc;

use axum::Json;
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};

use api::endpoint::{self, Endpoint, Method};

use crate::Shared;

pub(crate) use actions::operator_action;
pub(crate) use socket::{Listener, bind};

/// Serves the API until the task is aborted.
pub(crate) async fn serve(listener: Listener, shared: Arc<Shared>) {
    if let Err(err) = axum::serve(listener, router(shared)).await {
        tracing::error!(error = %err, "The local API stopped.");
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    let routes = Routes(axum::Router::new())
        .on::<endpoint::Status, _, _, _>(read::status)
        .on::<endpoint::Targets, _, _, _>(read::targets)
        .on::<endpoint::Incidents, _, _, _>(read::incidents)
        .on::<endpoint::Healing, _, _, _>(read::healing)
        .on::<endpoint::Evidence, _, _, _>(read::evidence)
        .on::<endpoint::Acknowledge, _, _, _>(actions::acknowledge)
        .on::<endpoint::ScanNow, _, _, _>(actions::scan_now)
        .on::<endpoint::HealNow, _, _, _>(actions::heal_now)
        .on::<endpoint::PauseHealing, _, _, _>(actions::pause)
        .on::<endpoint::ResumeHealing, _, _, _>(actions::resume)
        .on::<endpoint::AddMaintenance, _, _, _>(actions::add_maintenance)
        .on::<endpoint::RemoveMaintenance, _, _, _>(actions::remove_maintenance)
        .on::<endpoint::ApplyUpdate, _, _, _>(actions::update_unavailable)
        .on::<endpoint::RollBackUpdate, _, _, _>(actions::update_unavailable)
        .on::<endpoint::Export, _, _, _>(export::export);
    crate::setup::routes(routes)
        .0
        .fallback(not_found)
        .with_state(shared)
}

/// The router under construction; endpoints are added by their `api::endpoint` type.
pub(crate) struct Routes(axum::Router<Arc<Shared>>);

impl Routes {
    /// Binds `handler` to endpoint `E`'s method and route; the handler must answer with `E`'s
    /// answer type (checked at compile time by [`Answers`]).
    pub(crate) fn on<E, H, T, A>(self, handler: H) -> Routes
    where
        E: Endpoint,
        H: Handler<T, Arc<Shared>> + Answers<E, A>,
        T: 'static,
    {
        let method: MethodRouter<Arc<Shared>> = match E::METHOD {
            Method::Get => get(handler),
            Method::Post => post(handler),
            Method::Delete => delete(handler),
        };
        Routes(self.0.route(E::ROUTE, method))
    }
}

/// A handler whose answer is endpoint `E`'s: an async function of its extractors `A` that
/// returns [`Answer<E::Answer>`].
pub(crate) trait Answers<E, A> {}

macro_rules! answers {
    ($($arg:ident),*) => {
        impl<E, F, Fut, $($arg),*> Answers<E, ($($arg,)*)> for F
        where
            E: Endpoint,
            F: Fn($($arg),*) -> Fut,
            Fut: std::future::Future<Output = Answer<E::Answer>>,
        {
        }
    };
}

answers!();
answers!(A1);
answers!(A1, A2);
answers!(A1, A2, A3);

/// An error answer: status plus the [`api::ApiError`] body.
pub(crate) struct Fail(
    pub(crate) StatusCode,
    pub(crate) String,
    pub(crate) Option<String>,
);

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(api::ApiError {
                error: self.1,
                hint: self.2,
            }),
        )
            .into_response()
    }
}

pub(crate) type Answer<T> = Result<Json<T>, Fail>;

pub(crate) fn bad_request(error: impl Into<String>, hint: impl Into<String>) -> Fail {
    Fail(StatusCode::BAD_REQUEST, error.into(), Some(hint.into()))
}

/// A failure of the daemon itself; `err` is said with each of its causes once.
pub(crate) fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Fail {
    Fail(
        StatusCode::INTERNAL_SERVER_ERROR,
        chain(err.into().as_ref()),
        Some("see the daemon log (`journalctl -u osirisd`)".to_owned()),
    )
}

/// An error and its causes, `outer: inner: innermost`.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// Runs blocking work (file writes with fsync, the vault's encryption, `ip`) on a blocking
/// thread, so the async workers keep serving.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Fail> {
    tokio::task::spawn_blocking(work).await.map_err(internal)
}

async fn not_found() -> Fail {
    Fail(
        StatusCode::NOT_FOUND,
        "no such endpoint".to_owned(),
        Some("see docs/LOCAL-API.md for the endpoints of /v1".to_owned()),
    )
}
