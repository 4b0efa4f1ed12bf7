//! The admin listener: what Prometheus scrapes, and liveness/readiness probes. Never exposed on
//! the ingest listeners apps can reach.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
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
