//! Drift evaluation on an interval, off the async workers, and the persistence of baselines and
//! chart state in the data directory.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use llmwatch_core::Processor;
use llmwatch_core::drift::DriftState;

use crate::Shared;
use crate::persist::write_atomically;

/// Evaluates every `drift_interval` and saves state every `drift_state_interval`, until `stop`;
/// then saves once more.
pub(crate) async fn run(shared: Arc<Shared>, stop: impl Future<Output = ()>) {
    if !shared.processor.drift().enabled() {
        return stop.await;
    }
    let mut evaluate =
        tokio::time::interval(shared.config.drift_interval.max(Duration::from_secs(1)));
    let mut save = tokio::time::interval(
        shared
            .config
            .drift_state_interval
            .max(Duration::from_secs(1)),
    );
    evaluate.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first ticks fire at once: skip them, there is nothing new to evaluate or save yet.
    evaluate.tick().await;
    save.tick().await;
    let pin_at = shared
        .config
        .drift_pin_after
        .map(|after| tokio::time::Instant::now() + after);
    let pin = async move {
        match pin_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop, pin);
    let mut pinned = false;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = &mut pin, if !pinned => {
                pinned = true;
                let keys = shared.processor.drift().pin(&[], Some(llmwatch_core::unix_now_seconds()));
                tracing::info!(keys, "scheduled pin: current windows are now the drift references");
            }
            _ = evaluate.tick() => {
                let processor = shared.processor.clone();
                // CPU-bound statistics belong on the blocking pool, not on the ingest workers.
                // The monitors turn the wall clock into data time (the newest call's timestamp
                // plus the wall time since it arrived), so replayed or time-scaled traffic is
                // judged on its own timeline.
                let _ = tokio::task::spawn_blocking(move || processor.drift().evaluate(Some(llmwatch_core::unix_now_seconds()))).await;
            }
            _ = save.tick() => save_state(&shared).await,
        }
    }
    save_state(&shared).await;
}

async fn save_state(shared: &Arc<Shared>) {
    let Some(path) = shared.config.drift_state_file.clone() else {
        return;
    };
    let processor = shared.processor.clone();
    let result = tokio::task::spawn_blocking(move || {
        let state = processor.drift().export_state();
        let json = serde_json::to_vec(&state).map_err(std::io::Error::other)?;
        write_atomically(&path, &json)
    })
    .await;
    match result {
        Ok(Ok(())) => tracing::debug!("drift state saved"),
        Ok(Err(error)) => tracing::warn!(%error, "cannot save drift state"),
        Err(error) => tracing::warn!(%error, "drift state task failed"),
    }
}

/// Restores saved state. A file that cannot be read as state is reported and moved aside
/// (`…corrupt-<time>`) so the service starts with fresh baselines instead of failing.
pub(crate) fn restore(processor: &Processor, path: &Path) {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot read drift state; starting with fresh baselines");
            return;
        }
    };
    match serde_json::from_slice::<DriftState>(&bytes) {
        Ok(state) if state.version == 1 => {
            let keys = processor.drift().restore(state);
            tracing::info!(path = %path.display(), keys, "drift baselines restored");
        }
        Ok(state) => set_aside(path, &format!("unknown state version {}", state.version)),
        Err(error) => set_aside(path, &error.to_string()),
    }
}

fn set_aside(path: &Path, reason: &str) {
    let aside = path.with_extension(format!("corrupt-{}", llmwatch_core::unix_now_seconds()));
    let moved = std::fs::rename(path, &aside);
    tracing::error!(
        path = %path.display(),
        moved_to = %aside.display(),
        moved = moved.is_ok(),
        reason,
        "drift state is corrupt: set aside, starting with fresh baselines"
    );
}
