//! `llmwatch simulate`: realistic GenAI traffic through the OpenTelemetry OTLP exporter.

/// Options of `llmwatch simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// OTLP endpoint, e.g. http://127.0.0.1:4317 (gRPC) or http://127.0.0.1:4318 (HTTP).
    #[arg(long)]
    pub endpoint: String,
}

pub async fn run(_args: SimulateArgs) -> anyhow::Result<()> {
    anyhow::bail!("simulate is not implemented yet")
}
