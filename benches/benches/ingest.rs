//! Ingest path benchmarks on one realistic 512-span export request, and the scrape path.
//!
//! * `ingest/decode`: protobuf decode only.
//! * `ingest/decode_normalize_aggregate`: decode, then `Processor::ingest_traces` on a long-lived
//!   processor with the default configuration (what a receiver does per request).
//! * `ingest/normalize_aggregate`: `ingest_traces` on an already decoded request.
//! * `ingest/decode_normalize_aggregate_2_dimensions`: as above with `feature` and `tenant`.
//! * `scrape/snapshot_encode_text`: snapshot, conversion and Prometheus text with ~1000 series.
//!
//! `cargo bench -p llmwatch-benches` runs them all in about two minutes; Criterion arguments work
//! as usual, e.g. `cargo bench -p llmwatch-benches -- ingest/decode`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use llmwatch_benches::{
    Generator, RequestStats, WorkloadConfig, bench_dimensions, encode, realistic_request,
};
use llmwatch_core::{Processor, ProcessorConfig, Transport};
use llmwatch_server::exposition::render_text;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// The allocator the llmwatch binary uses, so the figures are the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Distinct models that make the default workload produce ~1000 label sets.
const MODELS_FOR_1000_SERIES: usize = 100;

fn decode(bytes: &[u8]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(bytes).expect("the generator writes valid protobuf")
}

fn ingest(c: &mut Criterion) {
    let request = realistic_request();
    let bytes = encode(&request);
    let stats = RequestStats::of(&request);
    eprintln!(
        "workload: {} spans in {} resources, {:.0} KiB encoded ({:.0} B/span); attributes per span \
         {}..{} (mean {:.1}), {:.1} per resource; {} spans with events ({} events); {} spans with \
         a value ≥200 B",
        stats.spans,
        stats.resources,
        stats.encoded_bytes as f64 / 1024.0,
        stats.encoded_bytes as f64 / stats.spans as f64,
        stats.min_attributes,
        stats.max_attributes,
        stats.mean_attributes,
        stats.mean_resource_attributes,
        stats.spans_with_events,
        stats.events,
        stats.spans_with_large_values,
    );

    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(stats.spans as u64));

    group.bench_function("decode", |b| b.iter(|| decode(black_box(&bytes))));

    let processor = Processor::new(&ProcessorConfig::default()).expect("default config");
    group.bench_function("decode_normalize_aggregate", |b| {
        b.iter(|| {
            let request = decode(black_box(&bytes));
            processor.ingest_traces(&request, Transport::Grpc)
        })
    });

    group.bench_function("normalize_aggregate", |b| {
        b.iter(|| processor.ingest_traces(black_box(&request), Transport::Grpc))
    });

    let with_dimensions = Processor::new(&ProcessorConfig {
        dimensions: bench_dimensions(),
        ..Default::default()
    })
    .expect("valid dimensions");
    group.bench_function("decode_normalize_aggregate_2_dimensions", |b| {
        b.iter(|| {
            let request = decode(black_box(&bytes));
            with_dimensions.ingest_traces(&request, Transport::Grpc)
        })
    });
    group.finish();

    let report = processor.ingest_traces(&request, Transport::Grpc);
    assert_eq!(report.rejected, 0, "{}", report.error_message);
    eprintln!(
        "label sets: {} (default config), {} (2 dimensions)",
        processor.store().series_count(),
        with_dimensions.store().series_count()
    );
}

fn scrape(c: &mut Criterion) {
    let processor = Processor::new(&ProcessorConfig::default()).expect("default config");
    let mut generator = Generator::new(WorkloadConfig {
        models: MODELS_FOR_1000_SERIES,
        ..Default::default()
    });
    for _ in 0..300 {
        processor.ingest_traces(&generator.next_request(), Transport::Grpc);
    }
    let series = processor.store().series_count();
    let text = render_text(processor.snapshot(), &[]);
    eprintln!(
        "scrape: {series} label sets, {} samples lines, {:.1} MiB of text",
        text.lines().filter(|l| !l.starts_with('#')).count(),
        text.len() as f64 / (1024.0 * 1024.0)
    );

    let mut group = c.benchmark_group("scrape");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(series as u64));
    group.bench_function("snapshot_encode_text", |b| {
        b.iter(|| render_text(processor.snapshot(), &[]))
    });
    group.bench_function("snapshot_only", |b| b.iter(|| processor.snapshot()));
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = ingest, scrape
}
criterion_main!(benches);
