//! `llmwatch serve`: bind, serve until SIGINT/SIGTERM, drain.

use std::sync::Arc;

use anyhow::Context;
use llmwatch_core::Processor;
use llmwatch_server::Server;

use crate::config::Config;

pub async fn run(mut config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    if config.top_spenders.salt.is_none() {
        config.top_spenders.salt = Some(spender_salt(&config.data_dir)?);
    }
    let processor = Arc::new(Processor::new(&config.processor_config()?)?);
    // Before the server restores drift state: it is restored for the embedder and probes in use.
    let embeddings = crate::embeddings::start(&config, &processor)?;
    let canaries = crate::canaries::start(&config, &processor)?;
    let judging = crate::judging::start(&config, &processor)?;
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
    canaries.stop().await;
    if let Some(embeddings) = embeddings {
        embeddings.stop().await;
    }
    judging.stop().await;
    Ok(())
}

/// The salt of spender hashes: kept in the data directory so hashes survive restarts, created
/// at random the first time.
fn spender_salt(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("spender-salt");
    match std::fs::read_to_string(&path) {
        Ok(salt) if !salt.trim().is_empty() => Ok(salt.trim().to_owned()),
        _ => {
            let salt: String = (0..32)
                .map(|_| format!("{:02x}", rand::random::<u8>()))
                .collect();
            llmwatch_server::persist::write_atomically(&path, salt.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(salt)
        }
    }
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
