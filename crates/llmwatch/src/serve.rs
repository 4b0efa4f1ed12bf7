//! `llmwatch serve`: bind, serve until SIGINT/SIGTERM, drain.

use std::sync::Arc;

use anyhow::Context;
use llmwatch_core::Processor;
use llmwatch_server::Server;

use crate::config::Config;

pub async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let processor = Arc::new(Processor::new(&config.processor_config())?);
    let server = Server::bind(config.server_config(), processor).await?;
    let addrs = server.local_addrs()?;
    tracing::info!(
        otlp_grpc = %addrs.otlp_grpc,
        otlp_http = %addrs.otlp_http,
        metrics = %addrs.metrics,
        "listening (metrics at http://{}/metrics)",
        addrs.metrics
    );
    server.serve(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
