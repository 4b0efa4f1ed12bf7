//! Prometheus exposition of the processor's snapshot (plus process metrics), and the same data
//! as JSON for `llmwatch replay --format json`.

use llmwatch_core::catalog::MetricKind;
use llmwatch_core::snapshot::{FamilySnapshot, SampleValue};
use prometheus::proto;
use prometheus::{Encoder, TextEncoder};

/// Converts snapshot families to the `prometheus` crate's data model.
pub fn to_metric_families(families: &[FamilySnapshot]) -> Vec<proto::MetricFamily> {
    families.iter().filter_map(to_metric_family).collect()
}

/// The Prometheus text of a snapshot (and of `extra` families), converting and encoding one
/// family at a time so a scrape holds one family's copy at most, not the whole page twice.
pub fn render_text(families: Vec<FamilySnapshot>, extra: &[proto::MetricFamily]) -> String {
    let lines: usize = families.iter().map(|f| f.samples.len()).sum();
    let mut buffer = Vec::with_capacity(lines * 160);
    let encoder = TextEncoder::new();
    for family in families {
        if let Some(converted) = to_metric_family(&family) {
            drop(family);
            encoder
                .encode(std::slice::from_ref(&converted), &mut buffer)
                .expect("catalog metric names and labels are valid");
        }
    }
    encoder
        .encode(extra, &mut buffer)
        .expect("process metric names are valid");
    String::from_utf8(buffer).expect("the text encoder writes UTF-8")
}

/// One family in the `prometheus` crate's data model; `None` when it has no samples.
fn to_metric_family(family: &FamilySnapshot) -> Option<proto::MetricFamily> {
    (!family.samples.is_empty()).then(|| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::{Format, decode_message};
    use llmwatch_core::catalog::{
        self, DRIFT_KEY_LABELS, GENAI_LABELS, LabelPrefix, OVERFLOW_LABEL,
    };
    use llmwatch_core::{Processor, ProcessorConfig, Transport};
    use llmwatch_semconv::Dimension;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

    fn chat_span(span_id: &str, model: &str, extra: &str) -> String {
        format!(
            r#"{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"{span_id}","name":"chat","kind":3,
            "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000001000000000",
            "attributes":[{{"key":"gen_ai.operation.name","value":{{"stringValue":"chat"}}}},
            {{"key":"gen_ai.request.model","value":{{"stringValue":"{model}"}}}},
            {{"key":"gen_ai.usage.input_tokens","value":{{"intValue":"10"}}}},
            {{"key":"gen_ai.response.finish_reasons","value":{{"arrayValue":{{"values":[{{"stringValue":"stop"}}]}}}}}},
            {{"key":"app.feature","value":{{"stringValue":"search"}}}}{extra}]}}"#
        )
    }

    /// Everything exposed is in the catalog, with exactly the catalog's labels.
    #[test]
    fn exposition_matches_the_catalog() {
        let processor = Processor::new(&ProcessorConfig {
            dimensions: vec![Dimension {
                label: "feature".into(),
                attributes: vec!["app.feature".into()],
            }],
            max_series: 1,
            ..ProcessorConfig::default()
        })
        .unwrap();
        let spans = [
            chat_span("0000000000000001", "a", ""),
            chat_span(
                "0000000000000002",
                "b",
                r#",{"key":"error.type","value":{"stringValue":"Timeout"}}"#,
            ),
        ];
        let json = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
            spans.join(",")
        );
        let request: ExportTraceServiceRequest =
            decode_message(Format::Json, json.as_bytes()).unwrap();
        let report = processor.ingest_traces(&request, Transport::HttpJson);
        assert_eq!((report.accepted, report.rejected), (2, 0));

        let snapshot = processor.snapshot();
        let mut families = to_metric_families(&snapshot);
        families.extend(process_families());
        let mut seen_overflow = false;
        for family in &families {
            let def = catalog::lookup(family.name())
                .unwrap_or_else(|| panic!("{} is exposed but not in the catalog", family.name()));
            for metric in family.get_metric() {
                let names: Vec<&str> = metric.get_label().iter().map(|l| l.name()).collect();
                let overflow = names.first() == Some(&OVERFLOW_LABEL);
                seen_overflow |= overflow;
                let mut expected: Vec<&str> = if overflow {
                    vec![OVERFLOW_LABEL]
                } else {
                    match def.prefix {
                        LabelPrefix::GenAi => {
                            GENAI_LABELS.iter().copied().chain(["feature"]).collect()
                        }
                        LabelPrefix::DriftKey => DRIFT_KEY_LABELS
                            .iter()
                            .copied()
                            .chain(["feature"])
                            .collect(),
                        LabelPrefix::None => Vec::new(),
                    }
                };
                expected.extend(def.labels);
                assert_eq!(names, expected, "labels of {}", def.name);
            }
        }
        assert!(
            seen_overflow,
            "the second model must fold into the overflow series"
        );
        let text = encode_text(&families);
        assert!(
            text.contains(
                "llmwatch_llm_calls_total{otel_metric_overflow=\"true\",error_type=\"Timeout\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("llmwatch_series_overflow_records_total 1"),
            "{text}"
        );
    }
}
