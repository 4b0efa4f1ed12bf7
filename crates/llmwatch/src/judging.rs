//! Wires the sample-and-judge pipeline into a running service: the judge queue as the
//! processor's sink, the worker with the LLM judge and evaluator plugins, and the exporter of
//! evaluation events. Everything runs on its own tasks; ingest only ever `try_send`s.

use std::sync::Arc;

use anyhow::bail;
use llmwatch_core::Processor;
use llmwatch_judge::{
    Judge, JudgeQueue, LlmJudge, Pipeline, PipelineConfig, Plugin, SpendCap, downstream,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;

/// The pipeline's tasks; [`QualityTasks::stop`] ends them.
#[derive(Debug)]
pub struct QualityTasks {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl QualityTasks {
    /// Stops the worker (evaluations in flight are abandoned) and flushes buffered evaluation
    /// events once.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts the judge worker, plugins and downstream exporter configured in `config`, connecting
/// the queue to `processor`. Nothing starts when no evaluator is configured. Must be called
/// inside a tokio runtime.
pub fn start(config: &Config, processor: &Arc<Processor>) -> anyhow::Result<QualityTasks> {
    let (stop, stopped) = watch::channel(false);
    let stop_signal = move || {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let mut tasks = Vec::new();
    let quality = config.quality();
    if config.judge.is_none() && config.evaluators.is_empty() {
        return Ok(QualityTasks { stop, tasks });
    }
    let judge = match &config.judge {
        None => None,
        Some(section) => {
            let client = Judge::new(section.client.clone())
                .map_err(|e| config.error(format!("judge.{}", e.key), e.reason))?;
            let prices = LlmJudge::catalog_prices(processor, &section.client.model);
            let cap = match (
                section.max_usd_per_hour,
                section.max_tokens_per_hour,
                &prices,
            ) {
                (Some(usd), _, Some(_)) => Some(SpendCap::Usd(usd)),
                (_, Some(tokens), _) => Some(SpendCap::Tokens(tokens)),
                (Some(_), None, None) => Err(config.error(
                    "judge.max_usd_per_hour",
                    format!(
                        "the judge model {:?} has no price in the price catalog; add it to a [pricing] catalog file or set judge.max_tokens_per_hour",
                        section.client.model
                    ),
                ))?,
                (None, None, _) => None,
            };
            if cap.is_none() {
                tracing::warn!(
                    "the judge has no hourly spend cap (judge.max_usd_per_hour or judge.max_tokens_per_hour)"
                );
            }
            let safety = quality
                .safety_judge_categories()
                .map_err(|(key, message)| config.error(key, message))?;
            Some(LlmJudge::new(client, cap, prices).with_safety(safety))
        }
    };
    let plugins = quality
        .plugins()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Plugin::new(p).map_err(|e| config.error(format!("evaluators[{i}]"), e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let events = match quality.downstream() {
        None => None,
        Some(downstream_config) => {
            let (sender, exporter) = downstream(downstream_config, processor.clone())
                .map_err(|e| config.error("downstream.endpoint", e.to_string()))?;
            tasks.push(tokio::spawn(exporter.run(stop_signal())));
            Some(sender)
        }
    };
    let defaults = PipelineConfig::default();
    let (capacity, pipeline_config) = match &config.judge {
        Some(j) => (
            j.queue_capacity,
            PipelineConfig {
                concurrency: j.concurrency,
                flag_below: j.flag_below,
            },
        ),
        None => (256, defaults),
    };
    let (queue, rx) = JudgeQueue::new(capacity);
    if processor.quality().set_sink(Box::new(queue)).is_err() {
        bail!("the judge queue is already connected to this processor");
    }
    let safety_judge = judge
        .as_ref()
        .is_some_and(|j| !j.safety_categories().is_empty());
    let pipeline = Arc::new(Pipeline::new(
        processor.clone(),
        judge,
        plugins,
        events,
        pipeline_config,
    ));
    tasks.push(tokio::spawn(pipeline.run(rx, stop_signal())));
    tracing::info!(
        judge = config.judge.is_some(),
        safety_judge,
        plugins = config.evaluators.len(),
        downstream = config.downstream.is_some(),
        queue_capacity = capacity,
        "sample-and-judge pipeline started"
    );
    Ok(QualityTasks { stop, tasks })
}
