//! Runs one stage of the ingest path in a loop on the benchmark request, with no other work in
//! the process, for `perf record` or `valgrind --tool=callgrind`:
//!
//! ```text
//! cargo build --profile bench -p llmwatch-benches --bin profile
//! perf record -g ./target/release/profile full 2000
//! valgrind --tool=callgrind ./target/release/profile full 20
//! ```
//!
//! Stages: `decode`, `full` (decode + ingest), `normalize` (ingest of a decoded request),
//! `full-dims` (decode + ingest with two dimensions), `scrape` (snapshot + text, ~1000 series).

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use llmwatch_benches::{Generator, WorkloadConfig, bench_dimensions, encode, realistic_request};
use llmwatch_core::{Processor, ProcessorConfig, Transport};
use llmwatch_server::exposition::render_text;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let stage = args.next().unwrap_or_else(|| "full".to_owned());
    let iterations: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);

    let request = realistic_request();
    let bytes = encode(&request);
    let spans = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len() as u64)
        .sum::<u64>();
    let decode = |bytes: &[u8]| {
        ExportTraceServiceRequest::decode(bytes).expect("the generator writes valid protobuf")
    };
    let processor = Processor::new(&ProcessorConfig {
        dimensions: if stage == "full-dims" {
            bench_dimensions()
        } else {
            Vec::new()
        },
        ..Default::default()
    })
    .expect("valid configuration");
    if stage == "scrape" {
        let mut generator = Generator::new(WorkloadConfig {
            models: 100,
            ..Default::default()
        });
        for _ in 0..300 {
            processor.ingest_traces(&generator.next_request(), Transport::Grpc);
        }
    }

    let started = Instant::now();
    for _ in 0..iterations {
        match stage.as_str() {
            "decode" => drop(black_box(decode(black_box(&bytes)))),
            "full" | "full-dims" => {
                let request = decode(black_box(&bytes));
                black_box(processor.ingest_traces(&request, Transport::Grpc));
            }
            "normalize" => {
                black_box(processor.ingest_traces(black_box(&request), Transport::Grpc));
            }
            "scrape" => {
                black_box(render_text(processor.snapshot(), &[]));
            }
            other => {
                eprintln!("unknown stage {other:?}: decode, full, normalize, full-dims, scrape");
                return ExitCode::FAILURE;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let per_iteration = elapsed / iterations as f64;
    if stage == "scrape" {
        println!("{stage}: {:.2} ms per scrape", per_iteration * 1e3);
    } else {
        println!(
            "{stage}: {:.0} µs per request, {:.0} spans/s",
            per_iteration * 1e6,
            spans as f64 / per_iteration
        );
    }
    ExitCode::SUCCESS
}
