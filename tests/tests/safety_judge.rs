//! The sampled LLM safety judge through a running llmwatch wired from a config file as
//! `llmwatch serve` wires it, against a scripted fake OpenAI-compatible judge on 127.0.0.1 that
//! tells the safety request from the quality request by its schema and plants verdicts by
//! markers in the judged answer. Every count and every sampled set is exact.

use std::collections::BTreeSet;

use llmwatch_tests::quality::{
    Downstream, FakeJudge, Reply, Service, attribute, content_span, judge_config, sampled_at,
    trace_ids, trace_marker, user_message,
};
use llmwatch_tests::{Labels, Metrics, hex};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use serde_json::{Value as Json, json};

const SAFETY_SCHEMA: &str = "llmwatch_safety_verdict";

/// The default categories of the safety judge, in order.
const DEFAULTS: [&str; 4] = [
    "harmful_content",
    "personal_data",
    "jailbreak_compliance",
    "hate_harassment",
];

// ---------------------------------------------------------------------------------------------
// The fake judge's answers, and its requests by kind.

fn is_safety(body: &Json) -> bool {
    body["response_format"]["json_schema"]["name"] == SAFETY_SCHEMA
}

/// The requests of one kind: the safety request (`safety`) or the quality request.
trait ByKind {
    /// The user messages of the safety (`true`) or quality (`false`) requests.
    fn users(&self, safety: bool) -> Vec<String>;
    /// The `trace=<hex>` markers of the safety or quality requests, as a set.
    fn traces(&self, safety: bool) -> BTreeSet<String>;
    /// How many safety requests carry `marker`.
    fn with_marker(&self, marker: &str) -> usize;
}

impl ByKind for FakeJudge {
    fn users(&self, safety: bool) -> Vec<String> {
        self.bodies()
            .iter()
            .filter(|b| is_safety(b) == safety)
            .map(user_message)
            .collect()
    }

    fn traces(&self, safety: bool) -> BTreeSet<String> {
        self.users(safety).iter().map(|m| trace_marker(m)).collect()
    }

    fn with_marker(&self, marker: &str) -> usize {
        self.users(true)
            .iter()
            .filter(|m| m.contains(marker))
            .count()
    }
}

/// The safety verdict for the categories the schema asks about: those named in an
/// `[unsafe:a,b]` marker flagged ("planted a"), the others not ("fine"). `[safety-malformed]`
/// answers "yes" instead of a boolean, `[safety-notjson]` answers prose.
fn safety_reply(body: &Json) -> Reply {
    let user = user_message(body);
    if user.contains("[safety-notjson]") {
        return Reply::completion("The answer looks safe to me.");
    }
    let asked: Vec<String> =
        body["response_format"]["json_schema"]["schema"]["properties"]["verdicts"]["properties"]
            .as_object()
            .expect("the schema lists the categories")
            .keys()
            .cloned()
            .collect();
    let planted: Vec<String> = match user.find("[unsafe:") {
        Some(at) => {
            let rest = &user[at + 8..];
            rest[..rest.find(']').unwrap()]
                .split(',')
                .map(str::to_owned)
                .collect()
        }
        None => Vec::new(),
    };
    let mut reasons = serde_json::Map::new();
    let mut flagged = serde_json::Map::new();
    for category in &asked {
        let unsafe_ = planted.contains(category);
        let reason = if unsafe_ {
            format!("planted {category}")
        } else {
            "fine".to_owned()
        };
        reasons.insert(category.clone(), json!(reason));
        let verdict = if user.contains("[safety-malformed]") {
            json!("yes")
        } else {
            json!(unsafe_)
        };
        flagged.insert(category.clone(), verdict);
    }
    Reply::completion(&json!({"reasons": reasons, "verdicts": flagged}).to_string())
}

/// Safety requests get [`safety_reply`]; quality requests score 1 with `[low]`, 5 otherwise.
fn reply(body: &Json) -> Reply {
    if is_safety(body) {
        safety_reply(body)
    } else if user_message(body).contains("[low]") {
        Reply::completion(
            &json!({"reasons": {"correctness": "wrong"}, "scores": {"correctness": 1}}).to_string(),
        )
    } else {
        Reply::completion(
            &json!({"reasons": {"correctness": "right"}, "scores": {"correctness": 5}}).to_string(),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The service under test.

/// The config: a judge at `judge_url` (1..5 correctness rubric, fast retries), the data directory
/// `dir`, and `extra` (the `[safety.judge]` and `[sampling]` sections under test) before it.
fn config(dir: &std::path::Path, judge_url: &str, extra: &str) -> String {
    judge_config(
        dir,
        judge_url,
        "queue_capacity = 256\nconcurrency = 4",
        extra,
    )
}

/// Every review entry (up to 100).
async fn review_all(service: &Service) -> Json {
    let (status, review) = service.review("?limit=100").await;
    assert_eq!(status, 200);
    review
}

fn requests(metrics: &Metrics, evaluator: &str, outcome: &str) -> f64 {
    metrics.at(
        "llmwatch_judge_requests_total",
        &Labels::new(&[("evaluator", evaluator), ("outcome", outcome)]),
    )
}

fn judge_flags(metrics: &Metrics, category: &str) -> f64 {
    metrics.at(
        "llmwatch_safety_flags_total",
        &Labels::new(&[
            ("service_name", "checkout"),
            ("gen_ai_request_model", "gpt-4o"),
            ("category", category),
            ("source", "judge"),
        ]),
    )
}

fn entry<'a>(review: &'a Json, trace_id: &[u8; 16]) -> &'a Json {
    review["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["trace_id"] == hex(trace_id))
        .unwrap_or_else(|| panic!("no review entry for {}: {review}", hex(trace_id)))
}

// ---------------------------------------------------------------------------------------------

/// At safety rate 0.25 the safety-judged traces are exactly those with R ≥ 0.75 × 2^56, with or
/// without quality sampling beside it; with quality sampling at 0.5 on the same traces, the
/// safety set lies inside the quality set, each such call gets one request of each kind, and the
/// call is queued once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safety_sampled_trace_ids_are_exactly_those_of_its_rate_beside_quality_sampling() {
    let dir = tempfile::tempdir().unwrap();
    let ids = trace_ids(64);
    let expected = |rate: f64| -> BTreeSet<String> {
        ids.iter()
            .filter(|id| sampled_at(id, rate))
            .map(|id| hex(id))
            .collect()
    };
    let (quarter, half) = (expected(0.25), expected(0.5));
    assert_eq!((quarter.len(), half.len()), (15, 29), "the fixed ids");
    assert!(quarter.is_subset(&half));
    let spans = || {
        ids.iter()
            .map(|id| content_span(*id, 1, "What is 2+2?", &format!("4 trace={}", hex(id))))
            .collect::<Vec<_>>()
    };

    // The safety judge alone.
    let (fake, url) = FakeJudge::start(reply).await;
    let service = Service::start(&config(dir.path(), &url, "[safety.judge]\nrate = 0.25\n")).await;
    service.send(spans()).await;
    let metrics = service
        .until("15 safety verdicts", |m| {
            requests(m, "safety_judge", "ok") == 15.0
        })
        .await;
    assert_eq!(fake.traces(true), quarter);
    assert_eq!(fake.users(false).len(), 0, "no quality request");
    assert_eq!(fake.total(), 15);
    assert_eq!(
        metrics.at(
            "llmwatch_judge_sampled_calls_total",
            &Labels::new(&[("service_name", "checkout"), ("result", "queued")])
        ),
        15.0
    );
    assert_eq!(metrics.total("llmwatch_judge_requests_total"), 15.0);
    assert_eq!(
        metrics.total_where(
            "llmwatch_safety_flags_total",
            &Labels::new(&[("source", "judge")])
        ),
        0.0
    );
    service.stop().await;

    // Beside quality sampling at 0.5.
    let (fake, url) = FakeJudge::start(reply).await;
    let extra = "[sampling]\ndefault_rate = 0.5\n[safety.judge]\nrate = 0.25\n";
    let service = Service::start(&config(dir.path(), &url, extra)).await;
    service.send(spans()).await;
    let metrics = service
        .until("29 scores and 15 safety verdicts", |m| {
            requests(m, "judge", "ok") == 29.0 && requests(m, "safety_judge", "ok") == 15.0
        })
        .await;
    assert_eq!(fake.traces(true), quarter);
    assert_eq!(fake.traces(false), half);
    assert_eq!(fake.users(true).len(), 15);
    assert_eq!(fake.users(false).len(), 29);
    // Queued once per call: the union of the two sets is the quality set.
    assert_eq!(
        metrics.at(
            "llmwatch_judge_sampled_calls_total",
            &Labels::new(&[("service_name", "checkout"), ("result", "queued")])
        ),
        29.0
    );
    assert_eq!(metrics.total("llmwatch_judge_requests_total"), 44.0);
    // Each kind counts its own tokens: 120 + 30 per reply.
    let tokens = |evaluator, kind| {
        metrics.at(
            "llmwatch_judge_tokens_total",
            &Labels::new(&[("evaluator", evaluator), ("token_type", kind)]),
        )
    };
    assert_eq!(tokens("judge", "input"), 29.0 * 120.0);
    assert_eq!(tokens("safety_judge", "input"), 15.0 * 120.0);
    assert_eq!(tokens("safety_judge", "output"), 15.0 * 30.0);
    service.stop().await;
}

/// Calls the pattern monitor flagged are safety-judged at `flagged_rate` (1 by default), the
/// others at `rate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_flagged_calls_are_safety_judged_at_the_flagged_rate() {
    let ids = trace_ids(32);
    // Even calls leak an e-mail address in the prompt (pattern pii_email); odd ones are clean.
    let spans = || {
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                let input = if i.is_multiple_of(2) {
                    "Mail jane.doe@example.com the invoice"
                } else {
                    "What is 2+2?"
                };
                content_span(*id, 2, input, &format!("Done. trace={}", hex(id)))
            })
            .collect::<Vec<_>>()
    };
    let flagged = |i: usize| i.is_multiple_of(2);
    let expect = |rate: f64, flagged_rate: f64| -> BTreeSet<String> {
        ids.iter()
            .enumerate()
            .filter(|(i, id)| sampled_at(id, if flagged(*i) { flagged_rate } else { rate }))
            .map(|(_, id)| hex(id))
            .collect()
    };
    // Flagged calls with R below the 0.25 threshold exist: the raised rate is what picks them.
    assert!(
        ids.iter()
            .enumerate()
            .any(|(i, id)| flagged(i) && !sampled_at(id, 0.25))
    );

    for (extra, rate, flagged_rate) in [
        ("[safety.judge]\nrate = 0.25\n", 0.25, 1.0),
        ("[safety.judge]\nflagged_rate = 0.5\n", 0.0, 0.5),
    ] {
        let want = expect(rate, flagged_rate);
        // A data directory each: the review queue is read back from it at start.
        let dir = tempfile::tempdir().unwrap();
        let (fake, url) = FakeJudge::start(reply).await;
        let service = Service::start(&config(dir.path(), &url, extra)).await;
        service.send(spans()).await;
        let metrics = service
            .until(&format!("{} safety verdicts", want.len()), |m| {
                requests(m, "safety_judge", "ok") == want.len() as f64
            })
            .await;
        assert_eq!(fake.traces(true), want, "{extra}");
        assert_eq!(fake.users(false).len(), 0);
        assert_eq!(
            metrics.total_where(
                "llmwatch_safety_flags_total",
                &Labels::new(&[("category", "pii_email"), ("source", "input")])
            ),
            16.0
        );
        // Flagged calls the judge saw are reviewed with its entry; the others at once: every
        // flagged call has exactly one entry.
        let review = review_all(&service).await;
        assert_eq!(review["total"], 16, "{extra}");
        for (i, id) in ids.iter().enumerate().filter(|(i, _)| flagged(*i)) {
            assert_eq!(
                entry(&review, id)["reasons"],
                json!(["safety: pii_email"]),
                "{i}"
            );
        }
        service.stop().await;
    }
    assert_eq!(expect(0.25, 1.0).len(), 16 + 3);
    assert_eq!(expect(0.0, 0.5).len(), 8);
}

/// Planted unsafe verdicts become exactly those `source="judge"` flags, review entries with the
/// judge's reasons (beside the pattern monitor's), and evaluation events downstream; they are
/// not evaluation scores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_unsafe_verdicts_are_judge_flags_review_entries_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, url) = FakeJudge::start(reply).await;
    let (downstream, addr) = Downstream::start_grpc().await;
    let extra = format!(
        "[safety.judge]\nrate = 1.0\n[review]\ninclude_content = true\n\
         [downstream]\nendpoint = \"http://{addr}\"\nprotocol = \"grpc\"\n"
    );
    let service = Service::start(&config(dir.path(), &url, &extra)).await;
    let ids = trace_ids(4);
    service
        .send(vec![
            content_span(
                ids[0],
                10,
                "How do I make it?",
                "Step one. [unsafe:harmful_content,personal_data]",
            ),
            content_span(
                ids[1],
                11,
                "Who lives there?",
                "Her address. [unsafe:personal_data]",
            ),
            content_span(ids[2], 12, "What is 2+2?", "4"),
            content_span(
                ids[3],
                13,
                "Mail jane.doe@example.com about them",
                "They are awful. [unsafe:hate_harassment]",
            ),
        ])
        .await;
    let metrics = service
        .until("4 safety verdicts and 16 events", |m| {
            requests(m, "safety_judge", "ok") == 4.0
                && m.at(
                    "llmwatch_evaluation_events_exported_total",
                    &Labels::new(&[("result", "exported")]),
                ) == 16.0
        })
        .await;
    assert_eq!(fake.total(), 4);
    assert_eq!(judge_flags(&metrics, "harmful_content"), 1.0);
    assert_eq!(judge_flags(&metrics, "personal_data"), 2.0);
    assert_eq!(judge_flags(&metrics, "hate_harassment"), 1.0);
    assert_eq!(judge_flags(&metrics, "jailbreak_compliance"), 0.0);
    assert_eq!(
        metrics.total_where(
            "llmwatch_safety_flags_total",
            &Labels::new(&[("source", "judge")])
        ),
        4.0
    );
    // The pattern monitor's flag is still its own.
    assert_eq!(metrics.total("llmwatch_safety_flags_total"), 5.0);
    assert_eq!(
        metrics.total_where(
            "llmwatch_safety_flags_total",
            &Labels::new(&[("category", "pii_email"), ("source", "input")])
        ),
        1.0
    );
    // Safety verdicts are not scores.
    assert_eq!(metrics.total("llmwatch_evaluations_flagged_total"), 0.0);
    assert_eq!(metrics.total("llmwatch_evaluation_score_count"), 0.0);

    let review = review_all(&service).await;
    assert_eq!(review["total"], 3);
    let first = entry(&review, &ids[0]);
    assert_eq!(
        first["reasons"],
        json!([
            "safety judge: harmful_content: planted harmful_content",
            "safety judge: personal_data: planted personal_data"
        ])
    );
    assert_eq!(
        first["safety_flags"],
        json!(["harmful_content", "personal_data"])
    );
    assert_eq!(
        first["output"],
        "Step one. [unsafe:harmful_content,personal_data]"
    );
    let scores: Vec<(String, String, String, bool)> = first["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert!(s.get("value").is_none(), "{s}");
            (
                s["name"].as_str().unwrap().to_owned(),
                s["evaluator"].as_str().unwrap().to_owned(),
                s["label"].as_str().unwrap().to_owned(),
                s["flagged"].as_bool().unwrap(),
            )
        })
        .collect();
    let verdict = |name: &str, flagged: bool| {
        (
            name.to_owned(),
            "safety_judge".to_owned(),
            if flagged { "flagged" } else { "not_flagged" }.to_owned(),
            flagged,
        )
    };
    assert_eq!(
        scores,
        [
            verdict("harmful_content", true),
            verdict("personal_data", true),
            verdict("jailbreak_compliance", false),
            verdict("hate_harassment", false),
        ]
    );
    assert_eq!(
        entry(&review, &ids[1])["reasons"],
        json!(["safety judge: personal_data: planted personal_data"])
    );
    let both = entry(&review, &ids[3]);
    assert_eq!(
        both["reasons"],
        json!([
            "safety judge: hate_harassment: planted hate_harassment",
            "safety: pii_email"
        ])
    );
    assert_eq!(
        both["safety_flags"],
        json!(["pii_email", "hate_harassment"])
    );

    // One event per category and call, on the call's trace and span.
    let records: Vec<LogRecord> = downstream
        .records()
        .into_iter()
        .map(|(_, record)| record)
        .collect();
    assert_eq!(records.len(), 16);
    let event = records
        .iter()
        .find(|r| {
            r.trace_id == ids[0]
                && attribute(r, "gen_ai.evaluation.name")
                    == Some(&Value::StringValue("harmful_content".into()))
        })
        .expect("the harmful_content event of the first call");
    assert_eq!(event.event_name, "gen_ai.evaluation.result");
    assert_eq!(event.span_id, vec![10u8; 8]);
    assert_eq!(
        attribute(event, "gen_ai.evaluation.score.label"),
        Some(&Value::StringValue("flagged".into()))
    );
    assert_eq!(
        attribute(event, "gen_ai.evaluation.explanation"),
        Some(&Value::StringValue("planted harmful_content".into()))
    );
    assert_eq!(
        attribute(event, "llmwatch.evaluator"),
        Some(&Value::StringValue("safety_judge".into()))
    );
    assert_eq!(attribute(event, "gen_ai.evaluation.score.value"), None);
    let not_flagged = records
        .iter()
        .filter(|r| {
            attribute(r, "gen_ai.evaluation.score.label")
                == Some(&Value::StringValue("not_flagged".into()))
        })
        .count();
    assert_eq!(not_flagged, 12);
    service.stop().await;
}

/// A verdict that is not a boolean per category, or not JSON at all, is retried once and then a
/// parse failure: no flag, no review entry, its tokens counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_safety_verdict_is_a_parse_failure_not_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, url) = FakeJudge::start(reply).await;
    let service = Service::start(&config(dir.path(), &url, "[safety.judge]\nrate = 1.0\n")).await;
    let ids = trace_ids(3);
    service
        .send(vec![
            content_span(
                ids[0],
                20,
                "Q",
                "A [safety-malformed] [unsafe:harmful_content]",
            ),
            content_span(
                ids[1],
                21,
                "Q",
                "A [safety-notjson] [unsafe:harmful_content]",
            ),
            content_span(ids[2], 22, "Q", "A"),
        ])
        .await;
    let metrics = service
        .until("3 safety evaluations", |m| {
            m.total_where(
                "llmwatch_judge_requests_total",
                &Labels::new(&[("evaluator", "safety_judge")]),
            ) == 3.0
        })
        .await;
    assert_eq!(requests(&metrics, "safety_judge", "parse_failure"), 2.0);
    assert_eq!(requests(&metrics, "safety_judge", "ok"), 1.0);
    // Each malformed verdict was asked for twice: the parse retry.
    assert_eq!(fake.with_marker("[safety-malformed]"), 2);
    assert_eq!(fake.with_marker("[safety-notjson]"), 2);
    assert_eq!(fake.total(), 5);
    assert_eq!(
        metrics.total_where(
            "llmwatch_safety_flags_total",
            &Labels::new(&[("source", "judge")])
        ),
        0.0
    );
    assert_eq!(
        metrics.at(
            "llmwatch_judge_tokens_total",
            &Labels::new(&[("evaluator", "safety_judge"), ("token_type", "input")])
        ),
        5.0 * 120.0
    );
    assert_eq!(review_all(&service).await["total"], 0);
    service.stop().await;
}

/// The request the fake receives is the safety request: its strict schema asks a boolean and a
/// reason for every category (the defaults, one replaced, one added), the system message carries
/// their instructions and no rubric; and the judge's hourly spend cap refuses safety requests
/// too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_safety_request_carries_the_categories_and_shares_the_spend_cap() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, url) = FakeJudge::start(reply).await;
    let extra = "[safety.judge]\nrate = 1.0\ncategories = [\
                 { name = \"personal_data\", instructions = \"Reveals a customer's account number.\" },\
                 { name = \"medical_advice\", instructions = \"Gives a diagnosis or a dosage.\" }]\n";
    let service = Service::start(&config(dir.path(), &url, extra)).await;
    let id = trace_ids(1)[0];
    service
        .send(vec![content_span(
            id,
            30,
            "Is this mole bad?",
            "Take 800 mg. [unsafe:medical_advice]",
        )])
        .await;
    let metrics = service
        .until("1 safety verdict", |m| {
            requests(m, "safety_judge", "ok") == 1.0
        })
        .await;
    assert_eq!(judge_flags(&metrics, "medical_advice"), 1.0);
    let body = fake.bodies()[0].clone();
    assert_eq!(body["model"], "gpt-4o-mini");
    let format = &body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["name"], SAFETY_SCHEMA);
    assert_eq!(format["json_schema"]["strict"], true);
    let names: Vec<&str> = DEFAULTS.iter().copied().chain(["medical_advice"]).collect();
    let schema = &format["json_schema"]["schema"];
    let booleans: serde_json::Map<String, Json> = names
        .iter()
        .map(|n| ((*n).to_owned(), json!({"type": "boolean"})))
        .collect();
    let texts: serde_json::Map<String, Json> = names
        .iter()
        .map(|n| ((*n).to_owned(), json!({"type": "string"})))
        .collect();
    assert_eq!(
        schema,
        &json!({
            "type": "object",
            "properties": {
                "reasons": {"type": "object", "properties": texts, "required": names, "additionalProperties": false},
                "verdicts": {"type": "object", "properties": booleans, "required": names, "additionalProperties": false},
            },
            "required": ["reasons", "verdicts"],
            "additionalProperties": false,
        })
    );
    let system = body["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("- personal_data: Reveals a customer's account number.\n"),
        "{system}"
    );
    assert!(
        system.contains("- medical_advice: Gives a diagnosis or a dosage.\n"),
        "{system}"
    );
    assert!(
        system.contains("- harmful_content: The response gives real help toward serious harm"),
        "{system}"
    );
    assert!(!system.contains("correctness"), "{system}");
    assert_eq!(
        body["messages"][1]["content"],
        "<prompt>\nIs this mole bad?\n</prompt>\n\n<response>\nTake 800 mg. [unsafe:medical_advice]\n</response>"
    );
    service.stop().await;

    // A token cap smaller than one request's estimate: nothing is sent, of either kind.
    let (fake, url) = FakeJudge::start(reply).await;
    let extra = "[sampling]\ndefault_rate = 1.0\n[safety.judge]\nrate = 1.0\n";
    let text = config(dir.path(), &url, extra).replace(
        "concurrency = 4",
        "concurrency = 4\nmax_tokens_per_hour = 100",
    );
    let service = Service::start(&text).await;
    service
        .send(
            trace_ids(3)
                .iter()
                .map(|id| content_span(*id, 31, "Q", "A"))
                .collect(),
        )
        .await;
    let metrics = service
        .until("3 + 3 refused", |m| {
            requests(m, "judge", "spend_cap") == 3.0
                && requests(m, "safety_judge", "spend_cap") == 3.0
        })
        .await;
    assert_eq!(metrics.total("llmwatch_judge_requests_total"), 6.0);
    assert_eq!(fake.total(), 0);
    service.stop().await;
}
