//! Wires the `[embeddings]` client into a running service: the drift monitors' prompt and
//! response signals are embedded remotely from then on.

use std::sync::Arc;

use llmwatch_core::Processor;
use llmwatch_judge::{EmbeddingTasks, start_embeddings};

use crate::config::Config;

/// Connects and starts the remote embeddings client when configured (`None` otherwise: the
/// built-in embedder). Call before any ingest and before the server restores saved drift
/// state. Must be called inside a tokio runtime; errors name the key.
pub fn start(
    config: &Config,
    processor: &Arc<Processor>,
) -> anyhow::Result<Option<EmbeddingTasks>> {
    let Some(section) = &config.embeddings else {
        return Ok(None);
    };
    let tasks = start_embeddings(section.client(), processor)
        .map_err(|e| config.error(format!("embeddings.{}", e.key), e.reason))?;
    tracing::info!(model = %section.model, "remote embeddings for prompt and response drift");
    Ok(Some(tasks))
}
