//! Wires the `[[canaries]]` probes into a running service: one task per probe, recording into
//! the processor's canary metrics and drift monitors.

use std::sync::Arc;

use llmwatch_core::Processor;
use llmwatch_judge::{Canary, CanaryTasks, spawn_canaries};

use crate::config::Config;

/// Builds every probe (reading its API key) and starts them. Call before the server restores
/// saved drift state, so probe baselines are restored too. Must be called inside a tokio
/// runtime; errors name the probe's key.
pub fn start(config: &Config, processor: &Arc<Processor>) -> anyhow::Result<CanaryTasks> {
    let canaries = config
        .canaries
        .iter()
        .enumerate()
        .map(|(i, section)| {
            Canary::new(section.client())
                .map_err(|e| config.error(format!("canaries[{i}].{}", e.key), e.reason))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !canaries.is_empty() {
        tracing::info!(probes = canaries.len(), "canary probes started");
    }
    Ok(spawn_canaries(canaries, processor.clone()))
}
