//! Evaluation results as OpenTelemetry `gen_ai.evaluation.result` log events, sent to a
//! downstream OTLP endpoint so a trace backend shows the verdict on the evaluated call's trace.
//!
//! Events wait in a bounded buffer ([`EventSender::send`] never waits: a full buffer drops the
//! event) and an [`EventExporter`] sends them in batches over OTLP/gRPC or OTLP/HTTP protobuf.
//! Every event ends up counted once in `llmwatch_evaluation_events_exported_total{result}`:
//! `exported`, `failed` (the export failed or the receiver rejected it) or `dropped`.

use std::sync::Arc;
use std::time::Duration;

use llmwatch_core::Processor;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};

/// The event name, per the GenAI semantic conventions (v1.38+).
pub const EVENT_NAME: &str = "gen_ai.evaluation.result";

/// One evaluation result of one call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvaluationEvent {
    /// Of the evaluated call, so the event sits on its trace.
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    /// The evaluated app's `service.name`: the event's resource.
    pub service_name: String,
    pub name: String,
    pub value: Option<f64>,
    pub label: Option<String>,
    pub explanation: Option<String>,
    pub response_id: Option<String>,
    /// `judge` or the plugin's name (attribute `llmwatch.evaluator`).
    pub evaluator: String,
    pub time_unix_nano: u64,
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

impl EvaluationEvent {
    /// The OTLP log record: event name in `event_name`, the semantic-convention attributes, and
    /// the evaluated call's trace and span ids.
    pub fn log_record(&self) -> LogRecord {
        let mut attributes = vec![string("gen_ai.evaluation.name", &self.name)];
        if let Some(value) = self.value {
            attributes.push(KeyValue {
                key: "gen_ai.evaluation.score.value".to_owned(),
                value: Some(AnyValue {
                    value: Some(Value::DoubleValue(value)),
                }),
                ..KeyValue::default()
            });
        }
        if let Some(label) = &self.label {
            attributes.push(string("gen_ai.evaluation.score.label", label));
        }
        if let Some(explanation) = &self.explanation {
            attributes.push(string("gen_ai.evaluation.explanation", explanation));
        }
        if let Some(id) = &self.response_id {
            attributes.push(string("gen_ai.response.id", id));
        }
        attributes.push(string("llmwatch.evaluator", &self.evaluator));
        LogRecord {
            time_unix_nano: self.time_unix_nano,
            observed_time_unix_nano: self.time_unix_nano,
            severity_number: SeverityNumber::Info as i32,
            severity_text: "INFO".to_owned(),
            event_name: EVENT_NAME.to_owned(),
            attributes,
            trace_id: self.trace_id.clone(),
            span_id: self.span_id.clone(),
            ..LogRecord::default()
        }
    }
}

/// One export request for `events`: one resource per evaluated service, scope `llmwatch`.
pub fn export_request(events: &[EvaluationEvent]) -> ExportLogsServiceRequest {
    let mut resource_logs: Vec<ResourceLogs> = Vec::new();
    for event in events {
        let index = resource_logs.iter().position(|r| {
            r.resource.as_ref().is_some_and(|res| {
                res.attributes.first().and_then(|kv| kv.value.as_ref())
                    == Some(&AnyValue {
                        value: Some(Value::StringValue(event.service_name.clone())),
                    })
            })
        });
        let index = index.unwrap_or_else(|| {
            resource_logs.push(ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![string("service.name", &event.service_name)],
                    ..Resource::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "llmwatch".to_owned(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        ..InstrumentationScope::default()
                    }),
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            });
            resource_logs.len() - 1
        });
        resource_logs[index].scope_logs[0]
            .log_records
            .push(event.log_record());
    }
    ExportLogsServiceRequest { resource_logs }
}

/// How events reach the downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC `LogsService/Export`.
    Grpc,
    /// OTLP/HTTP protobuf, `POST {endpoint}/v1/logs`.
    HttpProtobuf,
}

/// Where and how evaluation events are sent.
#[derive(Debug, Clone, PartialEq)]
pub struct DownstreamConfig {
    /// `http://host:4317` (gRPC) or `http://host:4318` (HTTP; `/v1/logs` is added unless the
    /// URL already ends with it).
    pub endpoint: String,
    pub protocol: Protocol,
    /// The limit on one export request.
    pub timeout: Duration,
    /// Events buffered before more are dropped.
    pub buffer_capacity: usize,
    /// Most events in one export request.
    pub batch_size: usize,
}

impl Default for DownstreamConfig {
    fn default() -> Self {
        DownstreamConfig {
            endpoint: String::new(),
            protocol: Protocol::Grpc,
            timeout: Duration::from_secs(10),
            buffer_capacity: 2_048,
            batch_size: 256,
        }
    }
}

fn count(processor: &Processor, result: &str, n: usize) {
    if n > 0 {
        processor
            .quality()
            .metrics()
            .evaluation_events_exported
            .add(&[result], n as f64);
    }
}

/// Hands events to the exporter without waiting.
#[derive(Debug, Clone)]
pub struct EventSender {
    tx: mpsc::Sender<EvaluationEvent>,
    processor: Arc<Processor>,
}

impl EventSender {
    /// Buffers `event`; when the buffer is full it is dropped and counted.
    pub fn send(&self, event: EvaluationEvent) {
        if self.tx.try_send(event).is_err() {
            count(&self.processor, "dropped", 1);
        }
    }
}

#[derive(Debug)]
enum Client {
    Grpc(LogsServiceClient<Channel>),
    Http {
        client: reqwest::Client,
        url: String,
    },
}

/// Sends buffered events downstream in batches; run it on its own task.
#[derive(Debug)]
pub struct EventExporter {
    rx: mpsc::Receiver<EvaluationEvent>,
    client: Client,
    config: DownstreamConfig,
    processor: Arc<Processor>,
}

/// The sender and the exporter for `config`; counts go to `processor`'s quality metrics. Must
/// be called inside a tokio runtime (the gRPC channel connects lazily, on first export).
pub fn downstream(
    config: DownstreamConfig,
    processor: Arc<Processor>,
) -> Result<(EventSender, EventExporter), String> {
    let client = match config.protocol {
        Protocol::Grpc => {
            let endpoint = Endpoint::from_shared(config.endpoint.clone())
                .map_err(|e| format!("endpoint {:?}: {e}", config.endpoint))?
                .connect_timeout(config.timeout)
                .timeout(config.timeout);
            Client::Grpc(LogsServiceClient::new(endpoint.connect_lazy()))
        }
        Protocol::HttpProtobuf => {
            let base = config.endpoint.trim_end_matches('/');
            let url = if base.ends_with("/v1/logs") {
                base.to_owned()
            } else {
                format!("{base}/v1/logs")
            };
            reqwest::Url::parse(&url).map_err(|e| format!("endpoint {url:?}: {e}"))?;
            let client = reqwest::Client::builder()
                .timeout(config.timeout)
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
            Client::Http { client, url }
        }
    };
    let (tx, rx) = mpsc::channel(config.buffer_capacity.max(1));
    Ok((
        EventSender {
            tx,
            processor: processor.clone(),
        },
        EventExporter {
            rx,
            client,
            config,
            processor,
        },
    ))
}

impl EventExporter {
    /// Exports batches until `stop` completes, then sends what is buffered once more and
    /// returns.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut batch = Vec::with_capacity(self.config.batch_size);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                received = self.rx.recv_many(&mut batch, self.config.batch_size.max(1)) => {
                    if received == 0 {
                        return;
                    }
                    self.export(&mut batch).await;
                }
            }
        }
        while let Ok(event) = self.rx.try_recv() {
            batch.push(event);
            if batch.len() >= self.config.batch_size.max(1) {
                self.export(&mut batch).await;
            }
        }
        self.export(&mut batch).await;
    }

    async fn export(&mut self, batch: &mut Vec<EvaluationEvent>) {
        if batch.is_empty() {
            return;
        }
        let request = export_request(batch);
        let n = batch.len();
        batch.clear();
        let rejected = match &mut self.client {
            Client::Grpc(client) => match client.export(request).await {
                Ok(answer) => Ok(answer
                    .into_inner()
                    .partial_success
                    .map_or(0, |p| p.rejected_log_records.max(0) as usize)),
                Err(status) => Err(status.to_string()),
            },
            Client::Http { client, url } => {
                let sent = client
                    .post(url.as_str())
                    .header("content-type", "application/x-protobuf")
                    .body(request.encode_to_vec())
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => Ok(0),
                    Ok(response) => Err(format!("HTTP {}", response.status())),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        match rejected {
            Ok(rejected) => {
                let rejected = rejected.min(n);
                count(&self.processor, "exported", n - rejected);
                count(&self.processor, "failed", rejected);
            }
            Err(error) => {
                tracing::warn!(events = n, %error, "evaluation events not exported");
                count(&self.processor, "failed", n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_the_semconv_attributes_and_the_call_ids() {
        let event = EvaluationEvent {
            trace_id: vec![7; 16],
            span_id: vec![8; 8],
            service_name: "checkout".into(),
            name: "correctness".into(),
            value: Some(0.25),
            label: None,
            explanation: Some("wrong total".into()),
            response_id: Some("chatcmpl-1".into()),
            evaluator: "judge".into(),
            time_unix_nano: 42,
        };
        let other = EvaluationEvent {
            service_name: "search".into(),
            ..event.clone()
        };
        let request = export_request(&[event.clone(), other, event]);
        assert_eq!(request.resource_logs.len(), 2);
        let records = &request.resource_logs[0].scope_logs[0].log_records;
        assert_eq!(records.len(), 2);
        let record = &records[0];
        assert_eq!(record.event_name, EVENT_NAME);
        assert_eq!(
            (record.trace_id.as_slice(), record.span_id.as_slice()),
            (&[7u8; 16][..], &[8u8; 8][..])
        );
        let keys: Vec<&str> = record.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "gen_ai.evaluation.name",
                "gen_ai.evaluation.score.value",
                "gen_ai.evaluation.explanation",
                "gen_ai.response.id",
                "llmwatch.evaluator"
            ]
        );
        assert_eq!(
            record.attributes[1].value.as_ref().unwrap().value,
            Some(Value::DoubleValue(0.25))
        );
    }
}
