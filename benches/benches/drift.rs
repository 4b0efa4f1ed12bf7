//! Drift monitoring costs:
//!
//! * `drift/observe`: the ingest path on the realistic request with drift monitoring on, against
//!   the same with it off (the difference is the observation cost per span, O(1) per signal);
//! * `drift/evaluate_1000_keys`: one evaluation of 1,000 keys × every signal (9 numeric,
//!   5 categorical, 2 embeddings), each key holding a full reference and current window.
//!
//! Memory per key is printed once (resident size before and after filling 1,000 keys).

use std::hint::black_box;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use llmwatch_benches::{Generator, WorkloadConfig, realistic_request};
use llmwatch_core::drift::DriftConfig;
use llmwatch_core::{Processor, ProcessorConfig, Transport};

/// The allocator the llmwatch binary uses, so the figures are the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn observe(c: &mut Criterion) {
    let request = realistic_request();
    let spans = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum::<usize>();
    let mut group = c.benchmark_group("drift");
    group.throughput(Throughput::Elements(spans as u64));
    let off = Processor::new(&ProcessorConfig {
        drift: DriftConfig {
            enabled: false,
            ..DriftConfig::default()
        },
        ..ProcessorConfig::default()
    })
    .expect("config");
    let on = Processor::new(&ProcessorConfig::default()).expect("config");
    group.bench_function("ingest_without_drift", |b| {
        b.iter(|| off.ingest_traces(black_box(&request), Transport::Grpc))
    });
    group.bench_function("ingest_with_drift", |b| {
        b.iter(|| on.ingest_traces(black_box(&request), Transport::Grpc))
    });
    group.finish();
}

fn evaluate(c: &mut Criterion) {
    let before = resident_kib();
    let processor = Processor::new(&ProcessorConfig {
        drift: DriftConfig {
            max_keys: 1_000,
            ..DriftConfig::default()
        },
        max_series: 5_000,
        ..ProcessorConfig::default()
    })
    .expect("config");
    // ~1,000 keys (3 services × ~340 models), each with over a thousand calls: full references
    // and current windows.
    let mut generator = Generator::new(WorkloadConfig {
        models: 340,
        ..WorkloadConfig::default()
    });
    for _ in 0..2_400 {
        processor.ingest_traces(&generator.next_request(), Transport::Grpc);
    }
    let keys = processor.drift().baselines().len();
    let after = resident_kib();
    eprintln!(
        "drift keys: {keys}; resident {:.1} MiB → {:.1} MiB: {:.1} KiB per key (store and drift together)",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / keys.max(1) as f64
    );
    let mut group = c.benchmark_group("drift");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.bench_function("evaluate_1000_keys", |b| {
        b.iter(|| processor.drift().evaluate(None))
    });
    group.finish();
}

criterion_group!(benches, observe, evaluate);
criterion_main!(benches);
