//! Prometheus exposition of the processor's snapshot (plus process metrics), and the same data
//! as JSON for `llmwatch replay --format json`.

use llmwatch_core::catalog::MetricKind;
use llmwatch_core::snapshot::{FamilySnapshot, SampleValue};
use prometheus::proto;
use prometheus::{Encoder, TextEncoder};

/// Converts snapshot families to the `prometheus` crate's data model.
pub fn to_metric_families(families: &[FamilySnapshot]) -> Vec<proto::MetricFamily> {
    families
        .iter()
        .filter(|family| !family.samples.is_empty())
        .map(|family| {
            let mut out = proto::MetricFamily::default();
            out.set_name(family.def.name.to_owned());
            out.set_help(family.def.help.to_owned());
            out.set_field_type(match family.def.kind {
                MetricKind::Counter => proto::MetricType::COUNTER,
                MetricKind::Gauge => proto::MetricType::GAUGE,
                MetricKind::Histogram => proto::MetricType::HISTOGRAM,
            });
            for sample in &family.samples {
                let mut metric = proto::Metric::default();
                metric.set_label(
                    sample
                        .labels
                        .iter()
                        .map(|(name, value)| {
                            let mut pair = proto::LabelPair::default();
                            pair.set_name(name.clone());
                            pair.set_value(value.clone());
                            pair
                        })
                        .collect(),
                );
                match &sample.value {
                    SampleValue::Counter(v) => {
                        let mut counter = proto::Counter::default();
                        counter.set_value(*v);
                        metric.set_counter(counter);
                    }
                    SampleValue::Gauge(v) => {
                        let mut gauge = proto::Gauge::default();
                        gauge.set_value(*v);
                        metric.set_gauge(gauge);
                    }
                    SampleValue::Histogram(h) => {
                        let mut histogram = proto::Histogram::default();
                        histogram.set_sample_count(h.count);
                        histogram.set_sample_sum(h.sum);
                        histogram.set_bucket(
                            h.bounds
                                .iter()
                                .zip(&h.cumulative)
                                .map(|(bound, cumulative)| {
                                    let mut bucket = proto::Bucket::default();
                                    bucket.set_upper_bound(*bound);
                                    bucket.set_cumulative_count(*cumulative);
                                    bucket
                                })
                                .collect(),
                        );
                        metric.set_histogram(histogram);
                    }
                }
                out.mut_metric().push(metric);
            }
            out
        })
        .collect()
}

/// The Prometheus text exposition format (version 0.0.4).
pub fn encode_text(families: &[proto::MetricFamily]) -> String {
    let mut buffer = Vec::new();
    TextEncoder::new()
        .encode(families, &mut buffer)
        .expect("catalog metric names and labels are valid");
    String::from_utf8(buffer).expect("the text encoder writes UTF-8")
}

pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Process metrics (memory, CPU, file descriptors) of this process.
pub fn process_families() -> Vec<proto::MetricFamily> {
    use prometheus::core::Collector;
    prometheus::process_collector::ProcessCollector::for_self().collect()
}

/// The snapshot as one JSON document: `{"metrics": [{name, type, unit, help, samples:[…]}]}`.
pub fn to_json(families: &[FamilySnapshot]) -> serde_json::Value {
    use serde_json::json;
    let metrics: Vec<_> = families
        .iter()
        .filter(|family| !family.samples.is_empty())
        .map(|family| {
            let samples: Vec<_> = family
                .samples
                .iter()
                .map(|sample| {
                    let labels: serde_json::Map<_, _> = sample
                        .labels
                        .iter()
                        .filter(|(_, value)| !value.is_empty())
                        .map(|(name, value)| (name.clone(), json!(value)))
                        .collect();
                    match &sample.value {
                        SampleValue::Counter(v) | SampleValue::Gauge(v) => {
                            json!({"labels": labels, "value": v})
                        }
                        SampleValue::Histogram(h) => json!({
                            "labels": labels,
                            "count": h.count,
                            "sum": h.sum,
                            "buckets": h.bounds.iter().zip(&h.cumulative)
                                .map(|(le, n)| json!({"le": le, "count": n}))
                                .collect::<Vec<_>>(),
                        }),
                    }
                })
                .collect();
            json!({
                "name": family.def.name,
                "type": family.def.kind.as_str(),
                "unit": family.def.unit,
                "help": family.def.help,
                "samples": samples,
            })
        })
        .collect();
    json!({ "metrics": metrics })
}
