//! OTLP/HTTP: `POST /v1/traces` and `POST /v1/logs`, protobuf or JSON, identity or gzip, with the
//! status codes the OTLP specification names; and llmwatch's `POST /v1/feedback` (JSON) beside
//! them, on the listener apps already reach.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use llmwatch_core::{RequestRejection, Signal, Transport};
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::OwnedSemaphorePermit;

use crate::Shared;
use crate::body::{Format, Rejection, decode_content_encoding, decode_message};
use crate::signal::{Export, Logs, Traces};

pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/v1/traces", post(export::<Traces>))
        .route("/v1/logs", post(export::<Logs>))
        .route("/v1/feedback", post(crate::feedback::http))
        .with_state(shared);
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
}

async fn export<E: Export>(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let Some(format) = Format::from_content_type(content_type) else {
        let rejection = Rejection::new(
            RequestRejection::UnsupportedMediaType,
            format!(
                "unsupported Content-Type {:?}; use application/x-protobuf or application/json",
                content_type.unwrap_or("")
            ),
        );
        // No negotiated encoding to answer in: the transport counts as protobuf.
        return reject(
            &shared,
            E::SIGNAL,
            Transport::HttpProtobuf,
            Format::Protobuf,
            rejection,
        );
    };
    let transport = match format {
        Format::Protobuf => Transport::HttpProtobuf,
        Format::Json => Transport::HttpJson,
    };
    match receive::<E>(&shared, &headers, body, format, transport).await {
        Ok(response) => encode(StatusCode::OK, format, &response),
        Err(rejection) => reject(&shared, E::SIGNAL, transport, format, rejection),
    }
}

async fn receive<E: Export>(
    shared: &Shared,
    headers: &HeaderMap,
    body: Body,
    format: Format,
    transport: Transport,
) -> Result<E::Response, Rejection> {
    let (_permit, bytes) = admit_and_read(shared, headers, body).await?;
    let request: E::Request = decode_message(format, &bytes)?;
    Ok(E::response(E::ingest(
        &shared.processor,
        &request,
        transport,
    )))
}

/// Admission (ready, a free in-flight slot) and the body, read within the timeout and the size
/// limit and decompressed. The permit is held while the caller processes the body.
pub(crate) async fn admit_and_read(
    shared: &Shared,
    headers: &HeaderMap,
    body: Body,
) -> Result<(OwnedSemaphorePermit, bytes::Bytes), Rejection> {
    if !shared.is_ready() {
        return Err(Rejection::new(
            RequestRejection::Unavailable,
            "llmwatch is shutting down",
        ));
    }
    let Ok(permit) = shared.inflight.clone().try_acquire_owned() else {
        return Err(Rejection::new(
            RequestRejection::Overloaded,
            "too many export requests in flight; retry later",
        ));
    };
    let limit = shared.config.max_request_bytes;
    // A sender that trickles its body must not hold an in-flight permit forever.
    let timeout = shared.config.body_read_timeout;
    let read = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await;
    let read = read.map_err(|_| {
        Rejection::new(
            RequestRejection::Timeout,
            format!("body not received within {}s", timeout.as_secs_f64()),
        )
    })?;
    let raw = read.map_err(|e| {
        if e.downcast_ref::<LengthLimitError>().is_some() {
            Rejection::new(
                RequestRejection::TooLarge,
                format!("body exceeds the limit of {limit} bytes"),
            )
        } else {
            Rejection::new(
                RequestRejection::Undecodable,
                format!("cannot read body: {e}"),
            )
        }
    })?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let bytes = decode_content_encoding(encoding, raw.to_bytes(), limit)?;
    Ok((permit, bytes))
}

fn reject(
    shared: &Shared,
    signal: Signal,
    transport: Transport,
    format: Format,
    rejection: Rejection,
) -> Response {
    shared
        .processor
        .telemetry()
        .rejected_request(signal, transport, rejection.reason);
    let (status, retry) = match rejection.reason {
        RequestRejection::Undecodable => (StatusCode::BAD_REQUEST, false),
        RequestRejection::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, false),
        RequestRejection::UnsupportedMediaType | RequestRejection::UnsupportedEncoding => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, false)
        }
        RequestRejection::Overloaded => (StatusCode::TOO_MANY_REQUESTS, true),
        RequestRejection::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, true),
        RequestRejection::Timeout => (StatusCode::REQUEST_TIMEOUT, false),
    };
    // The body is a google.rpc.Status in the request's encoding, as OTLP/HTTP specifies.
    let grpc_code = match status {
        StatusCode::TOO_MANY_REQUESTS => tonic::Code::ResourceExhausted,
        StatusCode::SERVICE_UNAVAILABLE => tonic::Code::Unavailable,
        _ => tonic::Code::InvalidArgument,
    };
    let rpc_status = tonic_types::Status {
        code: grpc_code as i32,
        message: rejection.message.clone(),
        details: Vec::new(),
    };
    let mut response = match format {
        Format::Protobuf => encode_protobuf(status, &rpc_status),
        Format::Json => (
            status,
            [(header::CONTENT_TYPE, Format::Json.content_type())],
            serde_json::json!({"code": rpc_status.code, "message": rpc_status.message}).to_string(),
        )
            .into_response(),
    };
    if retry {
        let seconds = shared.config.retry_after.as_secs().max(1);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn encode<M: Message + serde::Serialize>(
    status: StatusCode,
    format: Format,
    message: &M,
) -> Response {
    match format {
        Format::Protobuf => encode_protobuf(status, message),
        Format::Json => (
            status,
            [(header::CONTENT_TYPE, Format::Json.content_type())],
            serde_json::to_string(message).unwrap_or_else(|_| "{}".to_owned()),
        )
            .into_response(),
    }
}

fn encode_protobuf<M: Message>(status: StatusCode, message: &M) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, Format::Protobuf.content_type())],
        message.encode_to_vec(),
    )
        .into_response()
}
