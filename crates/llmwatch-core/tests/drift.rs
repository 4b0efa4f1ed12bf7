//! Live drift monitors end to end through the processor: a shift is detected after the
//! configured number of evaluations, nothing is flagged without one, a silent model swap is an
//! event, SPC charts alarm on an error burst, baselines survive a restart, and traffic stamped in
//! the past is judged on its own timeline.

use llmwatch_core::catalog::names;
use llmwatch_core::drift::{DriftConfig, ReferenceMode, SpcConfig};
use llmwatch_core::snapshot::{FamilySnapshot, Sample, SampleValue, family, matching};
use llmwatch_core::{Processor, ProcessorConfig, Transport};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// 2025-11-03T00:00:00Z.
const T0: i64 = 1_762_128_000;
const HOUR: i64 = 3_600;

/// A deterministic normal-ish generator (sum of uniforms), so every run sees the same data.
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let sum: f64 = (0..12).map(|_| self.uniform()).sum();
        mean + sd * (sum - 6.0)
    }
}

#[derive(Clone)]
struct Call {
    at: i64,
    output_tokens: i64,
    response_model: &'static str,
    error: bool,
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn request(calls: &[Call], first_id: u64) -> ExportTraceServiceRequest {
    let spans = calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let mut attributes = vec![
                kv("gen_ai.operation.name", Value::StringValue("chat".into())),
                kv("gen_ai.provider.name", Value::StringValue("openai".into())),
                kv("gen_ai.request.model", Value::StringValue("gpt-4o".into())),
                kv(
                    "gen_ai.response.model",
                    Value::StringValue(call.response_model.into()),
                ),
                kv(
                    "gen_ai.usage.input_tokens",
                    Value::IntValue(500 + (i as i64 % 7)),
                ),
                kv(
                    "gen_ai.usage.output_tokens",
                    Value::IntValue(call.output_tokens),
                ),
                kv(
                    "gen_ai.response.finish_reasons",
                    Value::StringValue("stop".into()),
                ),
            ];
            if call.error {
                attributes.push(kv(
                    "error.type",
                    Value::StringValue("RateLimitError".into()),
                ));
            }
            let end = call.at as u64 * 1_000_000_000;
            Span {
                trace_id: vec![9; 16],
                span_id: (first_id + i as u64 + 1).to_be_bytes().to_vec(),
                start_time_unix_nano: end - 800_000_000,
                end_time_unix_nano: end,
                attributes,
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// `n` calls spread evenly over [from, from + span) seconds.
fn calls(
    noise: &mut Noise,
    n: usize,
    from: i64,
    span: i64,
    mean_output: f64,
    model: &'static str,
) -> Vec<Call> {
    (0..n)
        .map(|i| Call {
            at: from + (i as i64 * span) / n as i64,
            output_tokens: noise.normal(mean_output, mean_output * 0.1).round() as i64,
            response_model: model,
            error: false,
        })
        .collect()
}

fn gauge(families: &[FamilySnapshot], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    matching(families, name, labels).next().map(Sample::scalar)
}

fn processor(drift: DriftConfig) -> Processor {
    Processor::new(&ProcessorConfig {
        drift,
        ..ProcessorConfig::default()
    })
    .unwrap()
}

fn config() -> DriftConfig {
    DriftConfig {
        reference: ReferenceMode::FirstN(600),
        min_samples: 200,
        consecutive: 3,
        ..DriftConfig::default()
    }
}

#[test]
fn a_shift_is_detected_after_consecutive_evaluations_and_only_where_it_is() {
    let p = processor(config());
    let mut noise = Noise(7);
    // The first 600 calls (two hours ago) become the reference.
    p.ingest_traces(
        &request(
            &calls(&mut noise, 600, T0, HOUR, 100.0, "gpt-4o-2024-08-06"),
            0,
        ),
        Transport::Grpc,
    );
    // The last hour: output tokens ×1.5, everything else the same.
    p.ingest_traces(
        &request(
            &calls(
                &mut noise,
                600,
                T0 + 2 * HOUR,
                HOUR,
                150.0,
                "gpt-4o-2024-08-06",
            ),
            10_000,
        ),
        Transport::Grpc,
    );
    let output = [("signal", "output_tokens")];
    for round in 1..=3 {
        p.drift().evaluate(None);
        let families = p.snapshot_at(None);
        let psi = gauge(&families, names::DRIFT_SCORE, &[output[0], ("test", "psi")]).unwrap();
        assert!(psi > 1.0, "PSI {psi}");
        let detected = gauge(&families, names::DRIFT_DETECTED, &output).unwrap();
        assert_eq!(detected, f64::from(u8::from(round == 3)), "round {round}");
        assert_eq!(
            gauge(
                &families,
                names::DRIFT_DETECTED,
                &[("signal", "input_tokens")]
            ),
            Some(0.0)
        );
        assert_eq!(
            gauge(
                &families,
                names::DRIFT_DETECTED,
                &[("signal", "response_model")]
            ),
            Some(0.0)
        );
    }
    let families = p.snapshot_at(None);
    let samples = |window| {
        gauge(
            &families,
            names::DRIFT_WINDOW_SAMPLES,
            &[output[0], ("window", window)],
        )
    };
    assert_eq!(samples("reference"), Some(600.0));
    // The current window keeps at most 128 values per 5-minute bucket: 12 × 50 calls → 600.
    assert_eq!(samples("current"), Some(600.0));
    let p_value = gauge(
        &families,
        names::DRIFT_P_VALUE,
        &[output[0], ("test", "ks")],
    )
    .unwrap();
    assert!(p_value < 1e-10, "{p_value}");
}

/// Traffic stamped in the past (a replay, or `llmwatch simulate --time-scale`) evaluated by the
/// wall clock, as the service does: the data clock is the newest call's time plus the wall time
/// since it arrived, so the current window holds the calls just sent, not the last hour of the
/// wall clock (empty).
#[test]
fn past_traffic_is_judged_on_its_own_timeline_by_the_wall_clock() {
    let p = processor(config());
    let mut noise = Noise(7);
    p.ingest_traces(
        &request(&calls(&mut noise, 600, T0, HOUR, 100.0, "m"), 0),
        Transport::Grpc,
    );
    p.ingest_traces(
        &request(
            &calls(&mut noise, 600, T0 + 2 * HOUR, HOUR, 150.0, "m"),
            10_000,
        ),
        Transport::Grpc,
    );
    let output = [("signal", "output_tokens")];
    // Within seconds of the send, the data clock is the newest call's time (6 s before the end
    // of a 5-minute bucket).
    for _ in 0..3 {
        p.drift().evaluate(Some(llmwatch_core::unix_now_seconds()));
    }
    let families = p.snapshot_at(None);
    assert_eq!(
        gauge(
            &families,
            names::DRIFT_WINDOW_SAMPLES,
            &[output[0], ("window", "current")]
        ),
        Some(600.0)
    );
    assert_eq!(gauge(&families, names::DRIFT_DETECTED, &output), Some(1.0));
    // Time passes without traffic: the window slides past the calls, no verdict is left.
    p.drift()
        .evaluate(Some(llmwatch_core::unix_now_seconds() + 2 * HOUR));
    let families = p.snapshot_at(None);
    assert_eq!(gauge(&families, names::DRIFT_SCORE, &output), None);
}

#[test]
fn without_a_shift_nothing_is_flagged_over_many_evaluations() {
    // Twenty independent current windows of the reference's own distribution: the false-alarm
    // rate per evaluation is measured on every signal, and no signal is ever flagged.
    let p = processor(DriftConfig {
        consecutive: 2,
        ..config()
    });
    let mut noise = Noise(11);
    p.ingest_traces(
        &request(&calls(&mut noise, 600, T0, HOUR, 100.0, "m-1"), 0),
        Transport::Grpc,
    );
    let mut crossings = 0;
    let mut evaluations = 0;
    for window in 0..20 {
        let from = T0 + (2 + window) * HOUR;
        p.ingest_traces(
            &request(
                &calls(&mut noise, 600, from, HOUR, 100.0, "m-1"),
                10_000 * (window as u64 + 1),
            ),
            Transport::Grpc,
        );
        p.drift().evaluate(None);
        let families = p.snapshot_at(None);
        for sample in &family(&families, names::DRIFT_SCORE).unwrap().samples {
            evaluations += 1;
            let is_psi = sample.labels.iter().any(|(n, v)| n == "test" && v == "psi");
            if let SampleValue::Gauge(psi) = sample.value
                && is_psi
                && psi >= 0.2
            {
                crossings += 1;
            }
        }
        let detected = &family(&families, names::DRIFT_DETECTED).unwrap().samples;
        assert!(
            detected.iter().all(|s| s.value == SampleValue::Gauge(0.0)),
            "window {window}"
        );
    }
    assert!(evaluations >= 20 * 5, "{evaluations}");
    assert_eq!(
        crossings, 0,
        "PSI crossed 0.2 in {crossings} of {evaluations} evaluations"
    );
}

#[test]
fn a_silent_model_swap_is_an_event_and_a_detected_mix_change() {
    let p = processor(config());
    let mut noise = Noise(3);
    p.ingest_traces(
        &request(
            &calls(&mut noise, 600, T0, HOUR, 100.0, "gpt-4o-2024-08-06"),
            0,
        ),
        Transport::Grpc,
    );
    p.ingest_traces(
        &request(
            &calls(
                &mut noise,
                600,
                T0 + 2 * HOUR,
                HOUR,
                100.0,
                "gpt-4o-2024-11-20",
            ),
            10_000,
        ),
        Transport::Grpc,
    );
    for _ in 0..3 {
        p.drift().evaluate(None);
    }
    let f = p.snapshot_at(None);
    let change = [
        ("kind", "response_model"),
        ("value", "gpt-4o-2024-11-20"),
        ("gen_ai_request_model", "gpt-4o"),
    ];
    assert_eq!(gauge(&f, names::MODEL_CHANGES, &change), Some(1.0));
    assert_eq!(family(&f, names::MODEL_CHANGES).unwrap().samples.len(), 1);
    assert_eq!(
        gauge(
            &f,
            names::DRIFT_SCORE,
            &[("signal", "response_model"), ("test", "js")]
        ),
        Some(1.0)
    );
    assert_eq!(
        gauge(&f, names::DRIFT_DETECTED, &[("signal", "response_model")]),
        Some(1.0)
    );
    assert_eq!(
        gauge(&f, names::DRIFT_DETECTED, &[("signal", "output_tokens")]),
        Some(0.0)
    );
}

#[test]
fn an_error_burst_raises_the_error_ratio_chart() {
    let spc = SpcConfig {
        warmup_intervals: 10,
        min_per_interval: 20,
        ..SpcConfig::default()
    };
    let p = processor(DriftConfig { spc, ..config() });
    let mut noise = Noise(5);
    let mut alarms = Vec::new();
    for interval in 0..20u64 {
        // 100 calls per interval: 4–6 errors normally, 30 from interval 15 on.
        let errors = if interval >= 15 {
            30
        } else {
            4 + (interval % 3) as usize
        };
        let mut batch = calls(&mut noise, 100, T0 + interval as i64 * 60, 60, 100.0, "m");
        batch.iter_mut().take(errors).for_each(|c| c.error = true);
        p.ingest_traces(&request(&batch, interval * 1_000), Transport::Grpc);
        p.drift().evaluate(None);
        let f = p.snapshot_at(None);
        let alarm = gauge(
            &f,
            names::SPC_ALARM,
            &[("signal", "error_ratio"), ("chart", "binomial_ewma")],
        );
        alarms.push(alarm);
    }
    // Warm-up yields no point; in control until the burst; the burst alarms at once.
    assert!(alarms[..10].iter().all(Option::is_none), "{alarms:?}");
    assert!(alarms[10..15].iter().all(|a| *a == Some(0.0)), "{alarms:?}");
    assert_eq!(alarms[15], Some(1.0), "{alarms:?}");
}

#[test]
fn baselines_persist_and_can_be_pinned_and_reset() {
    let p = processor(config());
    let mut noise = Noise(13);
    p.ingest_traces(
        &request(&calls(&mut noise, 600, T0, HOUR, 100.0, "m"), 0),
        Transport::Grpc,
    );
    let state = serde_json::to_string(&p.drift().export_state()).unwrap();

    // A restarted processor restores the reference and detects against it.
    let restarted = processor(config());
    assert_eq!(
        restarted
            .drift()
            .restore(serde_json::from_str(&state).unwrap()),
        1
    );
    assert_eq!(restarted.drift().baselines()[0].reference_calls, 600);
    restarted.ingest_traces(
        &request(
            &calls(&mut noise, 600, T0 + 2 * HOUR, HOUR, 150.0, "m"),
            10_000,
        ),
        Transport::Grpc,
    );
    for _ in 0..3 {
        restarted.drift().evaluate(None);
    }
    let f = restarted.snapshot_at(None);
    assert_eq!(
        gauge(&f, names::DRIFT_DETECTED, &[("signal", "output_tokens")]),
        Some(1.0)
    );

    // Pinning the current window makes it the reference: the shift is gone.
    let filter = [("gen_ai_request_model".to_owned(), "gpt-4o".to_owned())];
    assert_eq!(restarted.drift().pin(&filter, None), 1);
    restarted.drift().evaluate(None);
    let f = restarted.snapshot_at(None);
    assert_eq!(
        gauge(&f, names::DRIFT_DETECTED, &[("signal", "output_tokens")]),
        Some(0.0)
    );
    assert_eq!(
        gauge(&f, names::DRIFT_SCORE, &[("signal", "output_tokens")]),
        Some(0.0)
    );

    // A reset first-N reference collects afresh.
    assert_eq!(restarted.drift().reset(&[]), 1);
    assert_eq!(restarted.drift().baselines()[0].reference_calls, 0);
    assert_eq!(
        restarted.drift().pin(
            &[("gen_ai_request_model".to_owned(), "other".to_owned())],
            None
        ),
        0
    );
}

/// State saved before the ratio charts were binomial (a `charts` field of mean-and-σ EWMA
/// charts) restores its references; the ratio charts start afresh.
#[test]
fn state_with_the_former_ratio_charts_restores_its_references() {
    let p = processor(config());
    let mut noise = Noise(19);
    p.ingest_traces(
        &request(&calls(&mut noise, 600, T0, HOUR, 100.0, "m"), 0),
        Transport::Grpc,
    );
    let state = serde_json::to_string(&p.drift().export_state()).unwrap();
    assert!(state.contains("\"ratio_charts\":["));
    let former = state.replace("\"ratio_charts\":[", "\"charts\":[");
    let restarted = processor(config());
    assert_eq!(
        restarted
            .drift()
            .restore(serde_json::from_str(&former).unwrap()),
        1
    );
    assert_eq!(restarted.drift().baselines()[0].reference_calls, 600);
    let again = serde_json::to_string(&restarted.drift().export_state()).unwrap();
    assert!(again.contains("\"ratio_charts\":[{"), "{again}");
}

/// Embedding spans that carry their vectors (OpenInference) are compared as they are.
#[test]
fn carried_embedding_vectors_drift_when_their_direction_moves() {
    let p = processor(config());
    let mut noise = Noise(17);
    let embedding_spans = |noise: &mut Noise, n: usize, from: i64, axis: usize, first_id: u64| {
        let spans = (0..n)
            .map(|i| {
                let mut vector = vec![0.0; 8];
                for (d, component) in vector.iter_mut().enumerate() {
                    *component = noise.normal(if d == axis { 1.0 } else { 0.0 }, 0.2);
                }
                let values = vector
                    .into_iter()
                    .map(|x| AnyValue {
                        value: Some(Value::DoubleValue(x)),
                    })
                    .collect();
                let end = (from + (i as i64 * HOUR) / n as i64) as u64 * 1_000_000_000;
                Span {
                    trace_id: vec![4; 16],
                    span_id: (first_id + i as u64 + 1).to_be_bytes().to_vec(),
                    start_time_unix_nano: end - 100_000_000,
                    end_time_unix_nano: end,
                    attributes: vec![
                        kv(
                            "openinference.span.kind",
                            Value::StringValue("EMBEDDING".into()),
                        ),
                        kv(
                            "embedding.model_name",
                            Value::StringValue("text-embedding-3-small".into()),
                        ),
                        kv(
                            "embedding.embeddings.0.embedding.vector",
                            Value::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                                values,
                            }),
                        ),
                    ],
                    ..Default::default()
                }
            })
            .collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    };
    p.ingest_traces(&embedding_spans(&mut noise, 600, T0, 0, 0), Transport::Grpc);
    p.ingest_traces(
        &embedding_spans(&mut noise, 600, T0 + 2 * HOUR, 1, 10_000),
        Transport::Grpc,
    );
    for _ in 0..3 {
        p.drift().evaluate(None);
    }
    let f = p.snapshot_at(None);
    let signal = ("signal", "embedding_vector");
    assert_eq!(gauge(&f, names::DRIFT_DETECTED, &[signal]), Some(1.0));
    let p_value = gauge(&f, names::DRIFT_P_VALUE, &[signal, ("test", "mmd")]).unwrap();
    assert!(p_value < 0.02, "{p_value}");
    // 96 texts of the first 600 calls (8 per bucket × 12), 96 in the current window.
    assert_eq!(
        gauge(
            &f,
            names::DRIFT_WINDOW_SAMPLES,
            &[signal, ("window", "reference")]
        ),
        Some(96.0)
    );
    assert_eq!(
        gauge(
            &f,
            names::DRIFT_WINDOW_SAMPLES,
            &[signal, ("window", "current")]
        ),
        Some(96.0)
    );
    // Token counts did not move.
    assert_eq!(
        gauge(&f, names::DRIFT_DETECTED, &[("signal", "input_tokens")]),
        None
    );
}
