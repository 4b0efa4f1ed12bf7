//! The judge queue: where the processor hands sampled calls, bounded and never waiting.

use llmwatch_core::quality::{QualitySink, SampledCall};
use tokio::sync::mpsc;

/// The sending side, set as the processor's [`QualitySink`]: `offer` is a `try_send`, so a full
/// queue (a slow or hanging judge) drops the call, counted by the processor as `queue_full`,
/// and ingest never waits.
#[derive(Debug, Clone)]
pub struct JudgeQueue {
    tx: mpsc::Sender<SampledCall>,
    capacity: usize,
}

/// The receiving side, drained by the [`Pipeline`](crate::Pipeline).
pub type JudgeReceiver = mpsc::Receiver<SampledCall>;

impl JudgeQueue {
    /// A queue of `capacity` calls (at least 1).
    pub fn new(capacity: usize) -> (JudgeQueue, JudgeReceiver) {
        let capacity = capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        (JudgeQueue { tx, capacity }, rx)
    }
}

impl QualitySink for JudgeQueue {
    fn offer(&self, call: SampledCall) -> Option<SampledCall> {
        self.tx.try_send(call).err().map(|e| e.into_inner())
    }

    fn depth(&self) -> usize {
        self.capacity - self.tx.capacity()
    }

    fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_queue_refuses_and_depth_follows_the_receiver() {
        let (queue, mut rx) = JudgeQueue::new(2);
        assert!(queue.offer(SampledCall::default()).is_none());
        assert!(queue.offer(SampledCall::default()).is_none());
        assert!(queue.offer(SampledCall::default()).is_some());
        assert_eq!((queue.depth(), queue.capacity()), (2, 2));
        rx.recv().await.unwrap();
        assert_eq!(queue.depth(), 1);
        assert!(queue.offer(SampledCall::default()).is_none());
        drop(rx);
        assert!(queue.offer(SampledCall::default()).is_some());
    }
}
