//! `llmwatch replay`: OTLP files in, the exact `/metrics` content out (process metrics aside).
//!
//! Reads protobuf export requests (one per file), OTLP/JSON documents, and JSON lines as the
//! OpenTelemetry Collector's file exporter writes them.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use llmwatch_core::{IngestReport, Processor, Transport};
use llmwatch_server::body::normalize_otlp_json;
use llmwatch_server::exposition;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignalHint {
    Traces,
    Logs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Prometheus,
    Json,
}

/// Ingests every file and renders the resulting metrics.
pub fn run(
    config: &Config,
    paths: &[PathBuf],
    signal: Option<SignalHint>,
    format: OutputFormat,
) -> anyhow::Result<String> {
    let mut config = config.clone();
    if config.top_spenders.salt.is_none() {
        // The salt `serve` keeps, when there is one, so replayed hashes match live ones.
        let path = config.data_dir.join("spender-salt");
        config.top_spenders.salt = std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned());
    }
    let processor = Processor::new(&config.processor_config()?)?;
    for_each_request(paths, signal, |path, request| {
        let report = match request {
            OtlpRequest::Traces(request) => processor.ingest_traces(request, Transport::File),
            OtlpRequest::Logs(request) => processor.ingest_logs(request, Transport::File),
        };
        warn_rejections(path, &report);
    })?;
    // Windows (budgets, top spenders) end at the newest call replayed, not at today.
    let snapshot = processor.snapshot_at(None);
    Ok(match format {
        OutputFormat::Prometheus => exposition::render_text(snapshot, &[]),
        OutputFormat::Json => format!("{:#}\n", exposition::to_json(&snapshot)),
    })
}

/// Every file named, and every file under every folder named, in a stable order.
fn files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let metadata =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if metadata.is_dir() {
            let mut entries = Vec::new();
            for entry in std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
            {
                entries.push(entry?.path());
            }
            entries.sort();
            out.extend(files(&entries)?);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// One export request read from a file.
#[derive(Debug)]
pub enum OtlpRequest {
    Traces(ExportTraceServiceRequest),
    Logs(ExportLogsServiceRequest),
}

/// Reads every file named (folders: every file under them, in name order) as `replay` does, and
/// calls `callback` with each export request and the file it came from, in file order. An
/// unreadable or invalid file is an error naming it.
pub fn for_each_request(
    paths: &[PathBuf],
    hint: Option<SignalHint>,
    mut callback: impl FnMut(&Path, &OtlpRequest),
) -> anyhow::Result<()> {
    for file in files(paths)? {
        read_file(&file, hint, &mut callback).with_context(|| format!("{}", file.display()))?;
    }
    Ok(())
}

fn read_file(
    path: &Path,
    hint: Option<SignalHint>,
    callback: &mut impl FnMut(&Path, &OtlpRequest),
) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).context("cannot read")?;
    let looks_like_json = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if looks_like_json {
        let documents: Vec<serde_json::Value> = match serde_json::from_slice(&bytes) {
            Ok(document) => vec![document],
            Err(_) => bytes
                .split(|&b| b == b'\n')
                .enumerate()
                .filter(|(_, line)| line.iter().any(|b| !b.is_ascii_whitespace()))
                .map(|(i, line)| {
                    serde_json::from_slice(line)
                        .with_context(|| format!("line {}: invalid JSON", i + 1))
                })
                .collect::<anyhow::Result<_>>()?,
        };
        for mut document in documents {
            normalize_otlp_json(&mut document);
            let request = if document.get("resourceSpans").is_some() {
                OtlpRequest::Traces(
                    serde_json::from_value(document).context("invalid OTLP/JSON traces")?,
                )
            } else if document.get("resourceLogs").is_some() {
                OtlpRequest::Logs(
                    serde_json::from_value(document).context("invalid OTLP/JSON logs")?,
                )
            } else {
                bail!("JSON document has neither resourceSpans nor resourceLogs");
            };
            callback(path, &request);
        }
        return Ok(());
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let signal = hint.or_else(|| {
        if name.contains("traces") {
            Some(SignalHint::Traces)
        } else if name.contains("logs") {
            Some(SignalHint::Logs)
        } else {
            None
        }
    });
    let request = match signal {
        Some(SignalHint::Traces) => OtlpRequest::Traces(
            ExportTraceServiceRequest::decode(&bytes[..]).context("invalid protobuf traces")?,
        ),
        Some(SignalHint::Logs) => OtlpRequest::Logs(
            ExportLogsServiceRequest::decode(&bytes[..]).context("invalid protobuf logs")?,
        ),
        None => {
            bail!("protobuf file name says neither `traces` nor `logs`; pass --signal traces|logs")
        }
    };
    callback(path, &request);
    Ok(())
}

fn warn_rejections(path: &Path, report: &IngestReport) {
    if report.rejected > 0 {
        tracing::warn!(file = %path.display(), rejected = report.rejected, "{}", report.error_message);
    }
}
