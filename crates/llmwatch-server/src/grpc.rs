//! OTLP/gRPC: `TraceService/Export` and `LogsService/Export`, gzip accepted; and llmwatch's
//! `FeedbackService/Submit` beside them, on the listener apps already reach.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use llmwatch_core::quality::Channel;
use llmwatch_core::{RequestRejection, Signal, Transport};
use llmwatch_proto::FeedbackServiceServer;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tokio::sync::OwnedSemaphorePermit;
use tonic::codec::CompressionEncoding;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::Shared;
use crate::signal::{Export, Logs, Traces};

pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limit = shared.config.max_request_bytes;
    let traces = TraceServiceServer::new(Receiver(shared.clone()))
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    let logs = LogsServiceServer::new(Receiver(shared.clone()))
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    let feedback = FeedbackServiceServer::new(crate::feedback::FeedbackReceiver(shared.clone()))
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    tonic::transport::Server::builder()
        .layer(tower::layer::layer_fn(move |inner| CountRejections {
            inner,
            shared: shared.clone(),
        }))
        .add_service(traces)
        .add_service(logs)
        .add_service(feedback)
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), stop)
        .await
        .map_err(std::io::Error::other)
}

struct Receiver(Arc<Shared>);

impl Receiver {
    fn admit(&self) -> Result<OwnedSemaphorePermit, Status> {
        admit(&self.0)
    }
}

/// Refuses work when shutting down or when too many requests are in flight; the client is told
/// when to retry (RetryInfo), which makes these codes retryable for OTLP exporters.
pub(crate) fn admit(shared: &Shared) -> Result<OwnedSemaphorePermit, Status> {
    let retry = ErrorDetails::with_retry_info(Some(shared.config.retry_after));
    if !shared.is_ready() {
        return Err(Status::with_error_details(
            Code::Unavailable,
            "llmwatch is shutting down",
            retry,
        ));
    }
    shared.inflight.clone().try_acquire_owned().map_err(|_| {
        Status::with_error_details(
            Code::ResourceExhausted,
            "too many export requests in flight; retry later",
            retry,
        )
    })
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let _permit = self.admit()?;
        let report = Traces::ingest(&self.0.processor, request.get_ref(), Transport::Grpc);
        Ok(Response::new(Traces::response(report)))
    }
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let _permit = self.admit()?;
        let report = Logs::ingest(&self.0.processor, request.get_ref(), Transport::Grpc);
        Ok(Response::new(Logs::response(report)))
    }
}

/// Counts every refused gRPC request by reason, including those tonic refuses before a handler
/// runs (too large, undecodable, unknown compression), and gives the codes OTLP exporters act on
/// correctly: INVALID_ARGUMENT for an undecodable message (tonic says INTERNAL) and
/// RESOURCE_EXHAUSTED without RetryInfo, so not retried, for an oversized one (tonic says
/// OUT_OF_RANGE, which exporters retry).
#[derive(Clone)]
struct CountRejections<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, B> tower::Service<http::Request<B>> for CountRejections<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let feedback = path.contains("FeedbackService");
        let signal = if path.contains("LogsService") {
            Signal::Logs
        } else {
            Signal::Traces
        };
        let shared = self.shared.clone();
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            let headers = response.headers_mut();
            let code = headers
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i32>().ok())
                .map(Code::from_i32);
            // `grpc-message` is percent-encoded on the wire ("size%20limit"): match on the
            // decoded text.
            let message = tonic::Status::from_header_map(headers)
                .map(|status| status.message().to_owned())
                .unwrap_or_default();
            let reason = match code {
                None | Some(Code::Ok) => None,
                Some(Code::Internal) if message.contains("decode") => {
                    headers.insert(
                        "grpc-status",
                        http::HeaderValue::from(Code::InvalidArgument as i32),
                    );
                    Some(RequestRejection::Undecodable)
                }
                Some(Code::OutOfRange) => {
                    // Tonic's answer to an oversized message; OTLP exporters retry OUT_OF_RANGE,
                    // which would resend the same too-large request. RESOURCE_EXHAUSTED without
                    // RetryInfo is not retried.
                    headers.insert(
                        "grpc-status",
                        http::HeaderValue::from(Code::ResourceExhausted as i32),
                    );
                    Some(RequestRejection::TooLarge)
                }
                Some(Code::ResourceExhausted) if message.contains("size limit") => {
                    Some(RequestRejection::TooLarge)
                }
                Some(Code::ResourceExhausted) => Some(RequestRejection::Overloaded),
                Some(Code::Unavailable) => Some(RequestRejection::Unavailable),
                Some(Code::Unimplemented)
                    if message.contains("ompress") || message.contains("encoding") =>
                {
                    Some(RequestRejection::UnsupportedEncoding)
                }
                Some(_) => Some(RequestRejection::Undecodable),
            };
            match reason {
                // The feedback handler counted its refused items already, by their own reason.
                Some(_) if feedback && code == Some(Code::InvalidArgument) => {}
                Some(reason) if feedback => shared
                    .processor
                    .quality()
                    .signals()
                    .rejected(Channel::Grpc, reason.as_str()),
                Some(reason) => {
                    shared
                        .processor
                        .telemetry()
                        .rejected_request(signal, Transport::Grpc, reason)
                }
                None => {}
            }
            Ok(response)
        })
    }
}
