use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use llmwatch::config::Config;
use llmwatch::drift_cli::{self, Chart, DriftTest, Settings};
use llmwatch::pricing::{self, PricingArgs};
use llmwatch::replay::{self, OutputFormat, SignalHint};
use llmwatch::report::{self, Rules};
use llmwatch::{serve, simulate};

/// Watch LLM applications in production: OTLP GenAI telemetry in, Prometheus metrics out.
#[derive(Debug, Parser)]
#[command(name = "llmwatch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Receive OTLP (gRPC :4317, HTTP :4318) and expose Prometheus metrics (:9464/metrics).
    Serve {
        /// Configuration file (TOML); built-in defaults without one.
        #[arg(long)]
        config: Option<PathBuf>,
        /// OTLP/gRPC listen address.
        #[arg(long, value_name = "ADDR")]
        otlp_grpc: Option<SocketAddr>,
        /// OTLP/HTTP listen address.
        #[arg(long, value_name = "ADDR")]
        otlp_http: Option<SocketAddr>,
        /// Metrics and admin listen address (`/metrics`, `/healthz`, `/readyz`).
        #[arg(long, value_name = "ADDR")]
        metrics: Option<SocketAddr>,
        /// Directory for state that survives restarts.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        #[command(flatten)]
        pricing: PricingArgs,
    },
    /// Ingest OTLP files (protobuf or JSON) and print what `/metrics` would then show.
    Replay {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Signal of protobuf files whose name says neither `traces` nor `logs`.
        #[arg(long, value_enum)]
        signal: Option<SignalHint>,
        #[arg(long, value_enum, default_value = "prometheus")]
        format: OutputFormat,
        #[command(flatten)]
        pricing: PricingArgs,
        /// Files, or folders whose every file is read.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Compare a reference and a current sample with one drift test (as scipy computes it).
    ///
    /// A sample file is a JSON array of numbers, of strings (categories) or of number arrays
    /// (vectors), or one value per line.
    Drift {
        /// ks, chi2, chisquare, psi, js, wasserstein, energy, anderson, cvm or mmd.
        #[arg(long, value_enum)]
        test: DriftTest,
        /// The reference sample file.
        #[arg(long, value_name = "FILE")]
        reference: PathBuf,
        /// The current sample file.
        #[arg(long, value_name = "FILE")]
        current: PathBuf,
        /// A test setting (repeatable), e.g. `alternative=less`, `method=asymp`,
        /// `correction=false`, `sigma=1.5`, `permutations=500`, `seed=7`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Chart a series with an EWMA or CUSUM control chart and report its alarms.
    Spc {
        /// ewma, cusum or binomial-ewma.
        #[arg(long, value_enum)]
        chart: Chart,
        /// A chart setting (repeatable): `mean`, `sigma`, `warmup`, `reset`, and `lambda`, `L`
        /// (EWMA) or `k`, `h` (CUSUM); `lambda`, `L`, `warmup` (binomial EWMA).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Print one JSON object (with every charted point).
        #[arg(long)]
        json: bool,
        /// The series: a JSON array of numbers or one number per line; for binomial-ewma a
        /// JSON array of `[events, trials]` pairs, one per interval.
        file: PathBuf,
    },
    /// Compare two sets of OTLP files (read as `replay` reads them): which signals moved, per
    /// (service, provider, request model).
    Report {
        /// Reference files or folders.
        #[arg(long, value_name = "PATH", num_args = 1.., required = true)]
        reference: Vec<PathBuf>,
        /// Current files or folders.
        #[arg(long, value_name = "PATH", num_args = 1.., required = true)]
        current: Vec<PathBuf>,
        /// Print JSON instead of Markdown.
        #[arg(long)]
        json: bool,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Signal of protobuf files whose name says neither `traces` nor `logs`.
        #[arg(long, value_enum)]
        signal: Option<SignalHint>,
        /// A rule threshold (repeatable): `psi=0.2`, `js=0.1`, `alpha=0.01`, `min_count=30`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[command(flatten)]
        pricing: PricingArgs,
    },
    /// Send realistic GenAI traffic with the OpenTelemetry OTLP exporter, for demos and load tests.
    Simulate(simulate::SimulateArgs),
    /// Price catalog commands.
    Pricing {
        #[command(subcommand)]
        command: PricingCommand,
    },
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PricingCommand {
    /// Show which catalog entry prices MODEL, why it matched, and its prices.
    Lookup {
        model: String,
        /// The `gen_ai.provider.name` the calls come through (e.g. openai, aws.bedrock).
        #[arg(long, default_value = "")]
        provider: String,
        /// The day whose prices to show (YYYY-MM-DD); today by default.
        #[arg(long)]
        date: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        pricing: PricingArgs,
    },
    /// Validate a price catalog file; errors name the model entry and the field.
    Check {
        file: PathBuf,
        /// native, litellm or genai-prices; detected by default.
        #[arg(long)]
        format: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file; errors name the file, the key and what was expected.
    Check { file: PathBuf },
}

/// The many small allocations of protobuf decoding dominate the ingest path; mimalloc serves them
/// about 1.5x faster than the system allocator (see benches/).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    })
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LLMWATCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("llmwatch: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            config,
            otlp_grpc,
            otlp_http,
            metrics,
            data_dir,
            pricing,
        } => {
            let mut config = load_config(config.as_ref())?;
            pricing.apply(&mut config)?;
            config.server.otlp_grpc = otlp_grpc.unwrap_or(config.server.otlp_grpc);
            config.server.otlp_http = otlp_http.unwrap_or(config.server.otlp_http);
            config.server.metrics = metrics.unwrap_or(config.server.metrics);
            config.data_dir = data_dir.unwrap_or(config.data_dir);
            runtime()?.block_on(serve::run(config))
        }
        Command::Replay {
            config,
            signal,
            format,
            paths,
            pricing,
        } => {
            let mut config = load_config(config.as_ref())?;
            pricing.apply(&mut config)?;
            let output = replay::run(&config, &paths, signal, format)?;
            print!("{output}");
            Ok(())
        }
        Command::Drift {
            test,
            reference,
            current,
            set,
            json,
        } => {
            let settings = Settings::parse(&set)?;
            let reference = drift_cli::read_sample(&reference)?;
            let current = drift_cli::read_sample(&current)?;
            let result = drift_cli::drift(test, settings, &reference, &current)?;
            print_result(&result, json);
            Ok(())
        }
        Command::Spc {
            chart,
            set,
            json,
            file,
        } => {
            let settings = Settings::parse(&set)?;
            let values = drift_cli::read_sample(&file)?;
            let result = drift_cli::spc(chart, settings, &values)?;
            print_result(&result, json);
            Ok(())
        }
        Command::Report {
            reference,
            current,
            json,
            config,
            signal,
            set,
            pricing,
        } => {
            let rules = Rules::from_settings(Settings::parse(&set)?)?;
            let mut config = load_config(config.as_ref())?;
            pricing.apply(&mut config)?;
            print!(
                "{}",
                report::run(&config, &reference, &current, signal, rules, json)?
            );
            Ok(())
        }
        Command::Simulate(args) => runtime()?.block_on(simulate::run(args)),
        Command::Pricing {
            command:
                PricingCommand::Lookup {
                    model,
                    provider,
                    date,
                    config,
                    pricing: files,
                },
        } => {
            let mut config = load_config(config.as_ref())?;
            files.apply(&mut config)?;
            print!(
                "{}",
                pricing::lookup(&config, &model, &provider, date.as_deref())?
            );
            Ok(())
        }
        Command::Pricing {
            command: PricingCommand::Check { file, format },
        } => {
            print!("{}", pricing::check(&file, format.as_deref())?);
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check { file },
        } => {
            // The processor configuration reads the price catalogs the file names too.
            Config::load(&file)?.processor_config()?;
            println!("{}: ok", file.display());
            Ok(())
        }
    }
}

fn print_result(result: &serde_json::Value, json: bool) {
    if json {
        println!("{result}");
    } else {
        print!("{}", drift_cli::human(result));
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
