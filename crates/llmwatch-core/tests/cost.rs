//! Cost end to end through the processor: spans in, exact cost metrics out.

use std::sync::Arc;

use llmwatch_core::catalog::names;
use llmwatch_core::snapshot::{FamilySnapshot, SampleValue, family, matching};
use llmwatch_core::spend::{
    BudgetConfig, BudgetScope, SpendConfig, TopSpendersConfig, Window, spender_hash,
};
use llmwatch_core::{PricingConfig, Processor, ProcessorConfig, Transport};
use llmwatch_pricing::{Catalog, builtin_entries, parse_catalog};
use llmwatch_semconv::Dimension;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// 2025-11-03T10:00:00Z.
const T0: u64 = 1_762_164_000;

struct Call {
    service: &'static str,
    provider: &'static str,
    model: &'static str,
    input: i64,
    output: i64,
    cache_read: i64,
    at_seconds: u64,
    user: Option<&'static str>,
    session: Option<&'static str>,
    reported_cost: Option<f64>,
    feature: Option<&'static str>,
}

impl Default for Call {
    fn default() -> Self {
        Call {
            service: "shop",
            provider: "openai",
            model: "gpt-4o-mini",
            input: 1_000,
            output: 100,
            cache_read: 0,
            at_seconds: T0,
            user: None,
            session: None,
            reported_cost: None,
            feature: None,
        }
    }
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn request(calls: &[Call]) -> ExportTraceServiceRequest {
    let resource_spans = calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let mut attributes = vec![
                kv("gen_ai.operation.name", Value::StringValue("chat".into())),
                kv(
                    "gen_ai.provider.name",
                    Value::StringValue(call.provider.into()),
                ),
                kv(
                    "gen_ai.request.model",
                    Value::StringValue(call.model.into()),
                ),
                kv("gen_ai.usage.input_tokens", Value::IntValue(call.input)),
                kv("gen_ai.usage.output_tokens", Value::IntValue(call.output)),
                kv(
                    "gen_ai.usage.cache_read.input_tokens",
                    Value::IntValue(call.cache_read),
                ),
            ];
            let optional = [
                ("user.id", call.user),
                ("session.id", call.session),
                ("app.feature", call.feature),
            ];
            for (key, value) in optional {
                if let Some(value) = value {
                    attributes.push(kv(key, Value::StringValue(value.into())));
                }
            }
            if let Some(cost) = call.reported_cost {
                attributes.push(kv("gen_ai.usage.cost", Value::DoubleValue(cost)));
            }
            let start = call.at_seconds * 1_000_000_000;
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", Value::StringValue(call.service.into()))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![7; 16],
                        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                        name: format!("chat {}", call.model),
                        start_time_unix_nano: start,
                        end_time_unix_nano: start + 500_000_000,
                        attributes,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

fn value(families: &[FamilySnapshot], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let values: Vec<f64> = matching(families, name, labels)
        .map(|s| match &s.value {
            SampleValue::Counter(v) | SampleValue::Gauge(v) => *v,
            SampleValue::Histogram(h) => h.count as f64,
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

fn assert_close(actual: Option<f64>, expected: f64) {
    let actual = actual.expect("series exists");
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1e-12),
        "{actual} != {expected}"
    );
}

fn processor(config: ProcessorConfig) -> Processor {
    Processor::new(&config).unwrap()
}

#[test]
fn cost_by_component_and_model_is_exact() {
    let p = processor(ProcessorConfig::default());
    p.ingest_traces(
        &request(&[
            Call {
                input: 10_000,
                output: 500,
                cache_read: 4_000,
                ..Call::default()
            },
            Call {
                input: 2_000,
                output: 1_000,
                ..Call::default()
            },
        ]),
        Transport::Grpc,
    );
    let f = p.snapshot_at(None);
    let model = ("gen_ai_request_model", "gpt-4o-mini");
    // gpt-4o-mini: input 0.15, cache read 0.075, output 0.60 per million.
    assert_close(
        value(&f, names::COST, &[model, ("cost_component", "input")]),
        (6_000.0 + 2_000.0) * 0.15 / 1e6,
    );
    assert_close(
        value(&f, names::COST, &[model, ("cost_component", "cache_read")]),
        4_000.0 * 0.075 / 1e6,
    );
    assert_close(
        value(&f, names::COST, &[model, ("cost_component", "output")]),
        1_500.0 * 0.60 / 1e6,
    );
    assert_eq!(
        value(&f, names::COST, &[("cost_component", "reasoning")]),
        None
    );
    assert_eq!(value(&f, names::CALL_COST, &[model]), Some(2.0));
    assert_eq!(
        value(
            &f,
            names::PRICED_CALLS,
            &[model, ("priced_by", "response_model")]
        ),
        None
    );
    assert_eq!(
        value(
            &f,
            names::PRICED_CALLS,
            &[model, ("priced_by", "request_model")]
        ),
        Some(2.0)
    );
}

#[test]
fn unknown_models_are_unpriced_never_zero() {
    let p = processor(ProcessorConfig::default());
    p.ingest_traces(
        &request(&[Call {
            model: "in-house-7b",
            input: 300,
            output: 40,
            ..Call::default()
        }]),
        Transport::Grpc,
    );
    let f = p.snapshot_at(None);
    let model = ("gen_ai_request_model", "in-house-7b");
    assert_eq!(value(&f, names::UNPRICED_CALLS, &[model]), Some(1.0));
    assert_eq!(
        value(
            &f,
            names::UNPRICED_TOKENS,
            &[model, ("token_type", "input")]
        ),
        Some(300.0)
    );
    assert_eq!(
        value(
            &f,
            names::UNPRICED_TOKENS,
            &[model, ("token_type", "output")]
        ),
        Some(40.0)
    );
    assert_eq!(value(&f, names::COST, &[model]), None);
    assert_eq!(value(&f, names::CALL_COST, &[model]), None);
}

#[test]
fn span_reported_cost_is_cross_checked_or_trusted() {
    // Catalog cost of 1,000 in + 100 out on gpt-4o-mini: 0.00015 + 0.00006 = 0.00021.
    let calls = [
        Call {
            reported_cost: Some(0.00021),
            ..Call::default()
        },
        Call {
            reported_cost: Some(0.00042),
            ..Call::default()
        },
        Call {
            model: "in-house-7b",
            reported_cost: Some(0.5),
            ..Call::default()
        },
    ];
    let checked = processor(ProcessorConfig::default());
    checked.ingest_traces(&request(&calls), Transport::Grpc);
    let f = checked.snapshot_at(None);
    assert_eq!(
        value(
            &f,
            names::COST_DISAGREEMENTS,
            &[("gen_ai_request_model", "gpt-4o-mini")]
        ),
        Some(1.0)
    );
    assert_close(
        value(&f, names::COST, &[("gen_ai_request_model", "gpt-4o-mini")]),
        2.0 * 0.00021,
    );
    assert_eq!(
        value(
            &f,
            names::UNPRICED_CALLS,
            &[("gen_ai_request_model", "in-house-7b")]
        ),
        Some(1.0)
    );

    let trusting = processor(ProcessorConfig {
        pricing: PricingConfig {
            trust_span_cost: true,
            ..PricingConfig::default()
        },
        ..ProcessorConfig::default()
    });
    trusting.ingest_traces(&request(&calls), Transport::Grpc);
    let f = trusting.snapshot_at(None);
    assert_close(
        value(&f, names::COST, &[("gen_ai_request_model", "gpt-4o-mini")]),
        0.00021 + 0.00042,
    );
    // The catalog's split is kept, scaled to the trusted total.
    assert_close(
        value(
            &f,
            names::COST,
            &[
                ("gen_ai_request_model", "gpt-4o-mini"),
                ("cost_component", "input"),
            ],
        ),
        0.00015 + 0.00030,
    );
    assert_close(
        value(
            &f,
            names::COST,
            &[
                ("gen_ai_request_model", "in-house-7b"),
                ("cost_component", "unattributed"),
            ],
        ),
        0.5,
    );
    assert_eq!(
        value(&f, names::PRICED_CALLS, &[("priced_by", "span")]),
        Some(3.0)
    );
    assert_eq!(value(&f, names::UNPRICED_CALLS, &[]), None);
}

#[test]
fn user_catalogs_override_the_builtin_one() {
    let user = parse_catalog(
        "[[model]]\nname = \"gpt-4o-mini\"\nvendor = \"openai\"\n[[model.prices]]\ninput = 0.1\noutput = 0.4\n",
        "negotiated.toml",
        None,
    )
    .unwrap();
    let p = processor(ProcessorConfig {
        pricing: PricingConfig {
            catalog: Arc::new(Catalog::from_layers(vec![user, builtin_entries()])),
            ..PricingConfig::default()
        },
        ..ProcessorConfig::default()
    });
    p.ingest_traces(&request(&[Call::default()]), Transport::Grpc);
    assert_close(
        value(&p.snapshot_at(None), names::COST, &[]),
        (1_000.0 * 0.1 + 100.0 * 0.4) / 1e6,
    );
}

/// Every call below costs exactly 1 USD: 1,000,000 output tokens of a model priced 1.0 per million.
fn dollar_catalog() -> PricingConfig {
    let entries = parse_catalog(
        "[[model]]\nname = \"dollar\"\nvendor = \"acme\"\n[[model.prices]]\ninput = 0.0\noutput = 1.0\n",
        "dollar.toml",
        None,
    )
    .unwrap();
    PricingConfig {
        catalog: Arc::new(Catalog::from_layers(vec![entries])),
        ..PricingConfig::default()
    }
}

fn dollar(at_seconds: u64) -> Call {
    Call {
        provider: "",
        model: "dollar",
        input: 0,
        output: 1_000_000,
        at_seconds,
        ..Call::default()
    }
}

#[test]
fn budgets_by_scope_and_window() {
    let budget = |name: &str, window, limit_usd, scope| BudgetConfig {
        name: name.into(),
        window,
        limit_usd,
        scope,
    };
    let p = processor(ProcessorConfig {
        dimensions: vec![Dimension {
            label: "feature".into(),
            attributes: vec!["app.feature".into()],
        }],
        pricing: dollar_catalog(),
        spend: SpendConfig {
            budgets: vec![
                budget("daily", Window::Day, 3.0, BudgetScope::Global),
                budget(
                    "hourly-search",
                    Window::Hour,
                    10.0,
                    BudgetScope::Dimension {
                        index: 0,
                        value: "search".into(),
                    },
                ),
                budget(
                    "ops-rolling",
                    Window::Every(600),
                    2.0,
                    BudgetScope::Service("ops".into()),
                ),
                budget("per-user", Window::Day, 2.0, BudgetScope::PerUser),
            ],
            top_spenders: TopSpendersConfig::default(),
        },
        ..ProcessorConfig::default()
    });
    let day2 = T0 + 86_400;
    p.ingest_traces(
        &request(&[
            Call {
                user: Some("alice"),
                feature: Some("search"),
                ..dollar(T0)
            },
            Call {
                user: Some("alice"),
                ..dollar(T0 + 60)
            },
            Call {
                user: Some("alice"),
                ..dollar(T0 + 120)
            },
            Call {
                user: Some("bob"),
                feature: Some("search"),
                ..dollar(T0 + 180)
            },
            Call {
                service: "ops",
                ..dollar(T0 + 200)
            },
            Call {
                service: "ops",
                ..dollar(T0 + 300)
            },
            // Ten minutes after the first ops call, the rolling window holds only the later two.
            Call {
                service: "ops",
                ..dollar(T0 + 820)
            },
        ]),
        Transport::Grpc,
    );
    let f = p.snapshot_at(None);
    fn b(name: &str) -> [(&str, &str); 1] {
        [("budget", name)]
    }
    assert_eq!(value(&f, names::BUDGET_SPEND, &b("daily")), Some(7.0));
    assert_eq!(value(&f, names::BUDGET_LIMIT, &b("daily")), Some(3.0));
    assert_eq!(value(&f, names::BUDGET_BREACHES, &b("daily")), Some(1.0));
    assert_eq!(
        value(&f, names::BUDGET_SPEND, &b("hourly-search")),
        Some(2.0)
    );
    assert_eq!(value(&f, names::BUDGET_SPEND, &b("ops-rolling")), Some(2.0));
    assert_eq!(
        value(&f, names::BUDGET_BREACHES, &b("ops-rolling")),
        Some(1.0)
    );
    // Alice spent 3 (over 2), Bob 1: one breach, and the gauge shows the top user.
    assert_eq!(value(&f, names::BUDGET_SPEND, &b("per-user")), Some(3.0));
    assert_eq!(value(&f, names::BUDGET_BREACHES, &b("per-user")), Some(1.0));

    // The next day starts afresh; breaches stay counted.
    p.ingest_traces(
        &request(&[Call {
            user: Some("bob"),
            ..dollar(day2)
        }]),
        Transport::Grpc,
    );
    let f = p.snapshot_at(None);
    assert_eq!(value(&f, names::BUDGET_SPEND, &b("daily")), Some(1.0));
    assert_eq!(value(&f, names::BUDGET_BREACHES, &b("daily")), Some(1.0));
    assert_eq!(value(&f, names::BUDGET_SPEND, &b("per-user")), Some(1.0));
    assert_eq!(value(&f, names::BUDGET_SPEND, &b("ops-rolling")), Some(0.0));
}

#[test]
fn top_spenders_are_ranked_and_hashed() {
    let p = processor(ProcessorConfig {
        pricing: dollar_catalog(),
        spend: SpendConfig {
            budgets: Vec::new(),
            top_spenders: TopSpendersConfig {
                count: 2,
                salt: "pepper".into(),
                ..TopSpendersConfig::default()
            },
        },
        ..ProcessorConfig::default()
    });
    let mut calls = Vec::new();
    for (user, n) in [("carol", 3), ("dave", 5), ("erin", 1)] {
        for i in 0..n {
            calls.push(Call {
                user: Some(user),
                session: Some("s-1"),
                ..dollar(T0 + i)
            });
        }
    }
    p.ingest_traces(&request(&calls), Transport::Grpc);
    let f = p.snapshot_at(None);
    let dave = spender_hash("pepper", "dave");
    assert_eq!(dave.len(), 16);
    assert_ne!(dave, spender_hash("salt", "dave"));
    assert_eq!(
        value(
            &f,
            names::TOP_SPENDER_COST,
            &[("scope", "user"), ("rank", "1"), ("spender", &dave)]
        ),
        Some(5.0)
    );
    let carol = spender_hash("pepper", "carol");
    assert_eq!(
        value(
            &f,
            names::TOP_SPENDER_COST,
            &[("scope", "user"), ("rank", "2"), ("spender", &carol)]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &f,
            names::TOP_SPENDER_COST,
            &[("scope", "user"), ("rank", "3")]
        ),
        None
    );
    assert_eq!(
        value(
            &f,
            names::TOP_SPENDER_COST,
            &[("scope", "session"), ("rank", "1")]
        ),
        Some(9.0)
    );
    // No raw id anywhere in the labels.
    let labels: Vec<&str> = family(&f, names::TOP_SPENDER_COST)
        .unwrap()
        .samples
        .iter()
        .flat_map(|s| s.labels.iter().map(|(_, v)| v.as_str()))
        .collect();
    assert!(!labels.contains(&"dave") && !labels.contains(&"s-1"));
    assert_eq!(
        value(&f, names::TOP_SPENDER_ERROR_BOUND, &[("scope", "user")]),
        Some(9.0 / 1_000.0)
    );
}
