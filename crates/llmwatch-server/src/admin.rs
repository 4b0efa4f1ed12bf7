//! The admin listener: what Prometheus scrapes, and liveness/readiness probes. Never exposed on
//! the ingest listeners apps can reach.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::Shared;
use crate::exposition;

pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(
            "/api/v1/drift/baselines",
            get(list_baselines).delete(reset_baselines),
        )
        .route("/api/v1/drift/baselines/pin", post(pin_baselines))
        .route("/api/v1/review", get(list_review))
        .with_state(shared);
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let snapshot = shared.processor.snapshot();
    let body = exposition::render_text(snapshot, &exposition::process_families());
    (
        [(header::CONTENT_TYPE, exposition::TEXT_CONTENT_TYPE)],
        body,
    )
        .into_response()
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

/// Label filters from the query string (`?gen_ai_request_model=gpt-4o&service_name=checkout`):
/// a baseline matches when it has every given label value; no filter matches all.
type Filter = Query<BTreeMap<String, String>>;

fn filter(query: Filter) -> Vec<(String, String)> {
    query.0.into_iter().collect()
}

/// `GET /api/v1/drift/baselines`: every monitored key with its reference.
async fn list_baselines(State(shared): State<Arc<Shared>>) -> Response {
    Json(serde_json::json!({ "baselines": shared.processor.drift().baselines() })).into_response()
}

/// `POST /api/v1/drift/baselines/pin`: the current window becomes the reference of matching keys.
async fn pin_baselines(State(shared): State<Arc<Shared>>, query: Filter) -> Response {
    let pinned = shared
        .processor
        .drift()
        .pin(&filter(query), Some(llmwatch_core::unix_now_seconds()));
    Json(serde_json::json!({ "pinned": pinned })).into_response()
}

/// `DELETE /api/v1/drift/baselines`: matching keys' references are cleared (a first-N reference
/// collects afresh; a pinned one waits for the next pin).
async fn reset_baselines(State(shared): State<Arc<Shared>>, query: Filter) -> Response {
    let reset = shared.processor.drift().reset(&filter(query));
    Json(serde_json::json!({ "reset": reset })).into_response()
}

/// Entries `GET /api/v1/review` lists without `limit`.
pub const REVIEW_DEFAULT_LIMIT: usize = 20;
/// The most entries one request lists.
pub const REVIEW_MAX_LIMIT: usize = 1_000;

/// `GET /api/v1/review?limit=N`: flagged calls, newest first (20 by default, at most 1,000).
async fn list_review(State(shared): State<Arc<Shared>>, query: Filter) -> Response {
    let limit = match query.0.get("limit").map(|l| l.parse::<usize>()) {
        None => REVIEW_DEFAULT_LIMIT,
        Some(Ok(limit)) => limit.min(REVIEW_MAX_LIMIT),
        Some(Err(_)) => {
            return (
                StatusCode::BAD_REQUEST,
                "limit: expected a non-negative integer\n",
            )
                .into_response();
        }
    };
    let review = shared.processor.quality().review();
    let entries = review.list(limit);
    let entries: Vec<&llmwatch_core::quality::ReviewEntry> =
        entries.iter().map(|e| e.as_ref()).collect();
    Json(serde_json::json!({ "total": review.len(), "entries": entries })).into_response()
}
