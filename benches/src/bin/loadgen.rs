//! Pushes millions of realistic spans through a `Processor` in-process and reports throughput
//! and peak memory (`VmHWM`), to check that memory is bounded by the series limit, not traffic.
//!
//! ```text
//! cargo run --release -p llmwatch-benches --bin loadgen -- --spans 1000000 --models 150
//! cargo run --release -p llmwatch-benches --bin loadgen -- --spans 1000000 --models 100000 --max-series 2000
//! ```
//!
//! Each request is generated, encoded to protobuf, decoded and ingested, as a receiver would.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use llmwatch_benches::{Generator, WorkloadConfig, bench_dimensions, encode, peak_rss_kib};
use llmwatch_core::{Processor, ProcessorConfig, Transport};
use llmwatch_server::exposition::render_text;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// The allocator the llmwatch binary uses, so the figures are the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: loadgen [--spans N] [--models N] [--max-series N] [--dimensions] \
                     [--spans-per-request N] [--seed N]";

#[derive(Debug)]
struct Args {
    spans: u64,
    models: usize,
    max_series: usize,
    dimensions: bool,
    spans_per_request: usize,
    seed: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        spans: 1_000_000,
        models: 6,
        max_series: ProcessorConfig::default().max_series,
        dimensions: false,
        spans_per_request: llmwatch_benches::SPANS_PER_REQUEST,
        seed: None,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            let raw = argv.next().ok_or(format!("{name} needs a value"))?;
            raw.replace('_', "")
                .parse()
                .map_err(|e| format!("{name} {raw:?}: {e}"))
        };
        match flag.as_str() {
            "--spans" => args.spans = value("--spans")?,
            "--models" => args.models = value("--models")? as usize,
            "--max-series" => args.max_series = value("--max-series")? as usize,
            "--spans-per-request" => {
                args.spans_per_request = value("--spans-per-request")? as usize
            }
            "--seed" => args.seed = Some(value("--seed")?),
            "--dimensions" => args.dimensions = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field)?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let start_hwm = peak_rss_kib().unwrap_or(0);
    let mut config = WorkloadConfig {
        models: args.models,
        spans_per_request: args.spans_per_request,
        ..Default::default()
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    let mut generator = Generator::new(config);
    let processor = Processor::new(&ProcessorConfig {
        dimensions: if args.dimensions {
            bench_dimensions()
        } else {
            Vec::new()
        },
        max_series: args.max_series,
        ..Default::default()
    })
    .expect("the benchmark dimensions are valid");

    let mut spans = 0u64;
    let mut requests = 0u64;
    let mut rejected = 0u64;
    let mut in_processor = Duration::ZERO;
    let mut largest_request = 0usize;
    let started = Instant::now();
    while spans < args.spans {
        let bytes = encode(&generator.next_request());
        largest_request = largest_request.max(bytes.len());
        let timer = Instant::now();
        let request = ExportTraceServiceRequest::decode(bytes.as_slice())
            .expect("the generator writes valid protobuf");
        let report = processor.ingest_traces(&request, Transport::Grpc);
        drop(request);
        in_processor += timer.elapsed();
        spans += report.accepted + report.rejected;
        rejected += report.rejected;
        requests += 1;
    }
    let elapsed = started.elapsed();
    let after_ingest_hwm = peak_rss_kib().unwrap_or(0);
    let after_ingest_rss = status_kib("VmRSS:");

    let scrape_timer = Instant::now();
    let text = render_text(processor.snapshot(), &[]);
    let scrape = scrape_timer.elapsed();
    let after_scrape_hwm = peak_rss_kib().unwrap_or(0);

    let store = processor.store();
    println!(
        "spans            {spans} in {requests} requests of ≤{} spans (largest {:.0} KiB encoded), {rejected} rejected",
        args.spans_per_request,
        largest_request as f64 / 1024.0
    );
    println!(
        "workload         {} models, dimensions {}, series limit {}",
        args.models,
        if args.dimensions {
            "feature,tenant"
        } else {
            "none"
        },
        args.max_series
    );
    println!(
        "series           {} (overflow records: {})",
        store.series_count(),
        overflow_records(&text)
    );
    println!(
        "throughput       {:.0} spans/s decode+ingest, {:.0} spans/s end to end with generation ({:.1} s)",
        spans as f64 / in_processor.as_secs_f64(),
        spans as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "scrape           {:.1} ms, {} KiB of text, {} lines",
        scrape.as_secs_f64() * 1e3,
        text.len() / 1024,
        text.lines().count()
    );
    println!(
        "memory           VmHWM at start {:.1} MiB, after ingest {:.1} MiB (VmRSS {:.1} MiB), after a scrape {:.1} MiB",
        mib(start_hwm),
        mib(after_ingest_hwm),
        mib(after_ingest_rss),
        mib(after_scrape_hwm)
    );
    ExitCode::SUCCESS
}

/// The value of `llmwatch_series_overflow_records_total` in an exposition.
fn overflow_records(text: &str) -> &str {
    text.lines()
        .find_map(|line| line.strip_prefix("llmwatch_series_overflow_records_total "))
        .unwrap_or("0")
}
