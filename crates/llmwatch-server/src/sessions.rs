//! Ends the sessions that went quiet: implicit signals such as abandonment are only known once a
//! session has been inactive past its timeout, so the processor is swept on an interval.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::Shared;

pub(crate) async fn sweep(shared: Arc<Shared>, stop: impl Future<Output = ()>) {
    let every = shared
        .config
        .session_sweep_interval
        .max(Duration::from_millis(10));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {
                let now = llmwatch_core::unix_now_seconds().max(0) as u64;
                shared.processor.sweep_sessions(now);
            }
        }
    }
}
