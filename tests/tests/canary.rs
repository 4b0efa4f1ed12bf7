//! Canary probes and remote embeddings through the running service, as `serve` wires them
//! (`llmwatch::canaries::start`, `llmwatch::embeddings::start`, from a parsed config file),
//! against a scripted fake OpenAI-compatible server on 127.0.0.1 (chat completions and
//! embeddings). Everything is checked through `/metrics` and the admin API.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use llmwatch::config::Config;
use llmwatch_judge::{CanaryTasks, EmbeddingTasks};
use llmwatch_tests::{Labels, Metrics, TestServer, kv, loopback_config, request, s, serve_http};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The fake OpenAI-compatible server
// ---------------------------------------------------------------------------------------------

/// One scripted chat answer.
#[derive(Debug, Clone)]
enum Reply {
    Answer(String, Duration),
    Status(u16),
}

fn answer(text: &str) -> Reply {
    Reply::Answer(text.to_owned(), Duration::ZERO)
}

type AutoReply = Box<dyn Fn(usize) -> Reply + Send>;

#[derive(Default)]
struct Fake {
    /// Chat answers in order; a request finding none waits until one is scripted (or `auto`
    /// answers it).
    script: Mutex<VecDeque<Reply>>,
    /// Answers request number n (from 0) when the script is empty.
    auto: Mutex<Option<AutoReply>>,
    /// Every chat request body, in arrival order.
    chat: Mutex<Vec<Value>>,
    /// The inputs of every embeddings request, in arrival order.
    embeddings: Mutex<Vec<Vec<String>>>,
    /// Embeddings requests wait while this is set.
    hold_embeddings: AtomicBool,
    /// Statuses the next embeddings requests answer with (429 with `Retry-After: 0`), before
    /// answering normally again.
    embedding_failures: Mutex<VecDeque<u16>>,
}

impl Fake {
    fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().unwrap().extend(replies);
    }

    fn chat_requests(&self) -> usize {
        self.chat.lock().unwrap().len()
    }

    fn embedding_batches(&self) -> Vec<usize> {
        self.embeddings
            .lock()
            .unwrap()
            .iter()
            .map(Vec::len)
            .collect()
    }

    async fn wait_for_chat(&self, n: usize) {
        wait_until(&format!("{n} chat requests"), || self.chat_requests() >= n).await;
    }
}

async fn chat_completions(State(fake): State<Arc<Fake>>, body: String) -> (StatusCode, String) {
    let n = {
        let mut chat = fake.chat.lock().unwrap();
        chat.push(serde_json::from_str(&body).expect("the probe sends JSON"));
        chat.len() - 1
    };
    let reply = loop {
        if let Some(reply) = fake.script.lock().unwrap().pop_front() {
            break reply;
        }
        if let Some(auto) = &*fake.auto.lock().unwrap() {
            break auto(n);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    match reply {
        Reply::Status(status) => (
            StatusCode::from_u16(status).unwrap(),
            json!({"error": {"message": "scripted failure"}}).to_string(),
        ),
        Reply::Answer(content, delay) => {
            tokio::time::sleep(delay).await;
            let body = json!({
                "id": format!("chatcmpl-{n}"),
                "object": "chat.completion",
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }],
                "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28},
            });
            (StatusCode::OK, body.to_string())
        }
    }
}

/// The fake embedding model: texts about billing point one way, about shipping another,
/// anything else a third.
fn fake_vector(text: &str) -> Vec<f64> {
    if text.contains("billing") {
        vec![1.0, 0.0, 0.0, 0.0]
    } else if text.contains("shipping") {
        vec![0.0, 1.0, 0.0, 0.0]
    } else {
        vec![0.0, 0.0, 1.0, 0.0]
    }
}

async fn embeddings(
    State(fake): State<Arc<Fake>>,
    body: String,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let body: Value = serde_json::from_str(&body).expect("the client sends JSON");
    assert_eq!(body["model"], "fake-embedding");
    assert_eq!(body["encoding_format"], "float");
    let inputs: Vec<String> = body["input"]
        .as_array()
        .expect("input is an array")
        .iter()
        .map(|t| t.as_str().expect("input texts").to_owned())
        .collect();
    fake.embeddings.lock().unwrap().push(inputs.clone());
    while fake.hold_embeddings.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if let Some(status) = fake.embedding_failures.lock().unwrap().pop_front() {
        return (
            StatusCode::from_u16(status).unwrap(),
            [("retry-after", "0")],
            json!({"error": {"message": "scripted failure"}}).to_string(),
        );
    }
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": fake_vector(text)}))
        .collect();
    let tokens = 10 * inputs.len();
    let reply = json!({
        "object": "list",
        "data": data,
        "model": "fake-embedding",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    (StatusCode::OK, [("retry-after", "0")], reply.to_string())
}

/// Starts the fake; returns it and its API root.
async fn start_fake() -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/embeddings", post(embeddings))
        .with_state(fake.clone());
    let addr = serve_http(app).await;
    (fake, format!("http://{addr}/v1"))
}

// ---------------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------------

/// llmwatch with the canaries and embeddings client of a config file.
struct Service {
    server: TestServer,
    canaries: Option<CanaryTasks>,
    embeddings: Option<EmbeddingTasks>,
}

impl Service {
    async fn start(text: &str) -> Service {
        let config = Config::parse(text, "canary-test.toml").expect("valid config");
        let server_config = llmwatch_server::ServerConfig {
            drift_interval: config.drift.interval,
            ..loopback_config()
        };
        let processor = config.processor_config().expect("processor config");
        let server = TestServer::start_with(server_config, processor).await;
        let embeddings =
            llmwatch::embeddings::start(&config, &server.processor).expect("embeddings client");
        let canaries = llmwatch::canaries::start(&config, &server.processor).expect("canaries");
        Service {
            server,
            canaries: Some(canaries),
            embeddings,
        }
    }

    async fn scrape(&self) -> Metrics {
        self.server.scrape().await
    }

    /// Scrapes until `check` holds (at most 20 s).
    async fn scrape_until(&self, what: &str, check: impl Fn(&Metrics) -> bool) -> Metrics {
        self.server.scrape_until(what, check).await
    }

    async fn post_responses(&self, texts: &[String]) {
        let now = unix_nanos();
        let spans = texts
            .iter()
            .enumerate()
            .map(|(i, text)| response_span(i as u64, now, text))
            .collect();
        let answer = self.server.post_protobuf(&request("support", spans)).await;
        assert_eq!(answer.status, 200);
    }

    async fn stop(mut self) {
        if let Some(canaries) = self.canaries.take() {
            canaries.stop().await;
        }
        if let Some(embeddings) = self.embeddings.take() {
            embeddings.stop().await;
        }
        self.server.stop().await;
    }
}

async fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A chat span that ended now, with only its response captured.
fn response_span(n: u64, now: u64, text: &str) -> Span {
    let mut trace_id = vec![0x7a; 16];
    trace_id[8..].copy_from_slice(&(n + 1).to_be_bytes());
    Span {
        trace_id,
        span_id: (n + 1).to_be_bytes().to_vec(),
        name: "chat gpt-4o".into(),
        kind: 3,
        start_time_unix_nano: now - 400_000_000,
        end_time_unix_nano: now,
        attributes: vec![
            kv("gen_ai.operation.name", s("chat")),
            kv("gen_ai.provider.name", s("openai")),
            kv("gen_ai.request.model", s("gpt-4o")),
            kv("gen_ai.response.model", s("gpt-4o")),
            kv("gen_ai.completion.0.content", s(text)),
        ],
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Canary probes
// ---------------------------------------------------------------------------------------------

fn probe(extra: &[(&str, &str)]) -> Labels {
    Labels::new(&[
        ("probe", "capital"),
        ("gen_ai_request_model", "gpt-4o-mini"),
    ])
    .and(extra)
}

/// Runs by outcome: pass, fail, slow, error.
fn runs(metrics: &Metrics) -> [f64; 4] {
    ["pass", "fail", "slow", "error"].map(|outcome| {
        metrics.value(
            "llmwatch_canary_runs_total",
            &probe(&[("outcome", outcome)]),
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_flips_from_passing_to_failing_and_counts_every_outcome() {
    let (fake, base) = start_fake().await;
    fake.script([
        answer("Paris is the capital of France."),
        answer("The capital of France is Paris."),
    ]);
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let service = Service::start(&format!(
        r#"
[[canaries]]
name = "capital"
base_url = "{base}"
model = "gpt-4o-mini"
system = "Answer in one sentence."
prompt = "What is the capital of France?"
extra_body = {{ temperature = 0 }}
interval = "50ms"
timeout = "10s"
contains = ["Paris"]
max_latency = "400ms"
"#
    ))
    .await;

    // Two answers recorded; the third request waits for the script.
    fake.wait_for_chat(3).await;
    let metrics = service.scrape().await;
    assert_eq!(runs(&metrics), [2.0, 0.0, 0.0, 0.0]);
    assert_eq!(metrics.value("llmwatch_canary_passing", &probe(&[])), 1.0);
    assert_eq!(
        metrics.count("llmwatch_canary_latency_seconds", &probe(&[])),
        2.0
    );
    let last_success = metrics.value(
        "llmwatch_canary_last_success_timestamp_seconds",
        &probe(&[]),
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (started..=now).contains(&last_success),
        "{started} <= {last_success} <= {now}"
    );
    assert_eq!(
        fake.chat.lock().unwrap()[0],
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Answer in one sentence."},
                {"role": "user", "content": "What is the capital of France?"}
            ],
            "temperature": 0
        })
    );

    // The provider's answer changes: the probe fails.
    fake.script([answer("Lyon is the capital of France.")]);
    fake.wait_for_chat(4).await;
    let metrics = service.scrape().await;
    assert_eq!(runs(&metrics), [2.0, 1.0, 0.0, 0.0]);
    assert_eq!(metrics.value("llmwatch_canary_passing", &probe(&[])), 0.0);
    assert_eq!(
        metrics.count("llmwatch_canary_latency_seconds", &probe(&[])),
        3.0
    );

    // A right answer over max_latency is slow; a 500 is an error (and no latency).
    fake.script([Reply::Answer("Paris.".into(), Duration::from_millis(600))]);
    fake.wait_for_chat(5).await;
    fake.script([Reply::Status(500)]);
    fake.wait_for_chat(6).await;
    let metrics = service.scrape().await;
    assert_eq!(runs(&metrics), [2.0, 1.0, 1.0, 1.0]);
    assert_eq!(metrics.value("llmwatch_canary_passing", &probe(&[])), 0.0);
    assert_eq!(
        metrics.count("llmwatch_canary_latency_seconds", &probe(&[])),
        4.0
    );
    assert!(metrics.sum_of("llmwatch_canary_latency_seconds", &probe(&[])) >= 0.6);
    assert_eq!(
        metrics.value(
            "llmwatch_canary_last_success_timestamp_seconds",
            &probe(&[])
        ),
        last_success
    );
    service.stop().await;
}

/// Prose answers in three wordings, taken in turn.
fn prose(n: usize) -> String {
    [
        "The capital of France is Paris.",
        "Paris is the capital of France.",
        "The capital city of France is Paris, on the Seine.",
    ][n % 3]
        .to_owned()
}

/// The same answers as JSON.
fn json_answer(n: usize) -> String {
    [
        r#"{"capital": "Paris", "country": "FR"}"#,
        r#"{"country": "France", "capital": "Paris"}"#,
        r#"{"answer": "Paris"}"#,
    ][n % 3]
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_answer_style_shows_up_as_probe_drift() {
    let (fake, base) = start_fake().await;
    let json_style = Arc::new(AtomicBool::new(false));
    let style = json_style.clone();
    *fake.auto.lock().unwrap() = Some(Box::new(move |n| {
        if style.load(Ordering::SeqCst) {
            answer(&json_answer(n))
        } else {
            answer(&prose(n))
        }
    }));
    let mut service = Service::start(&format!(
        r#"
[drift]
interval = "1s"
consecutive = 1

[[canaries]]
name = "capital"
base_url = "{base}"
model = "gpt-4o-mini"
prompt = "What is the capital of France?"
interval = "20ms"
timeout = "10s"
contains = ["Paris"]
baseline_answers = 10
window_answers = 10
"#
    ))
    .await;
    let drift = |extra: &[(&str, &str)]| {
        Labels::new(&[
            ("gen_ai_request_model", "gpt-4o-mini"),
            ("signal", "canary_response_embedding:capital"),
        ])
        .and(extra)
    };

    // Ten answers form the baseline, ten more the window: the same style, no drift.
    fake.wait_for_chat(21).await;
    let metrics = service
        .scrape_until("the probe's first verdict", |m| {
            m.get("llmwatch_drift_detected", &drift(&[])).is_some()
        })
        .await;
    assert_eq!(metrics.value("llmwatch_drift_detected", &drift(&[])), 0.0);
    let samples = |m: &Metrics, window| {
        m.value(
            "llmwatch_drift_window_samples",
            &drift(&[("window", window)]),
        )
    };
    assert_eq!(
        (samples(&metrics, "reference"), samples(&metrics, "current")),
        (10.0, 10.0)
    );
    let p_same = metrics.value("llmwatch_drift_p_value", &drift(&[("test", "mmd")]));
    assert!(p_same > 0.01, "{p_same}");
    let baselines = service
        .server
        .http
        .get(format!(
            "http://{}/api/v1/drift/baselines",
            service.server.addrs.metrics
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let baselines: Value = serde_json::from_str(&baselines).unwrap();
    assert_eq!(
        baselines["baselines"],
        json!([{
            "labels": [
                ["service_name", ""],
                ["gen_ai_provider_name", ""],
                ["gen_ai_request_model", "gpt-4o-mini"],
                ["probe", "capital"]
            ],
            "mode": "first_n",
            "reference_calls": 10,
            "reference_samples": []
        }])
    );

    // The endpoint now answers the same question in JSON: once the window holds only JSON
    // answers (the probe stopped, so it stays so), the signal has drifted. The answers still
    // contain "Paris": the probe itself keeps passing.
    let switched = fake.chat_requests();
    json_style.store(true, Ordering::SeqCst);
    fake.wait_for_chat(switched + 12).await;
    service.canaries.take().unwrap().stop().await;
    let metrics = service
        .scrape_until("drift on the probe's answers", |m| {
            m.get("llmwatch_drift_p_value", &drift(&[("test", "mmd")])) == Some(1.0 / 101.0)
        })
        .await;
    assert_eq!(metrics.value("llmwatch_drift_detected", &drift(&[])), 1.0);
    assert_eq!(
        (samples(&metrics, "reference"), samples(&metrics, "current")),
        (10.0, 10.0)
    );
    assert!(metrics.value("llmwatch_drift_score", &drift(&[("test", "mmd")])) > 0.0);
    assert_eq!(metrics.value("llmwatch_canary_passing", &probe(&[])), 1.0);
    assert_eq!(
        metrics.value("llmwatch_canary_runs_total", &probe(&[("outcome", "fail")])),
        0.0
    );
    service.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Remote embeddings
// ---------------------------------------------------------------------------------------------

fn texts(result: &str) -> Labels {
    Labels::new(&[("result", result)])
}

/// An embeddings section against the fake, with one text signal place per text (one bucket of
/// an hour holding 100): every text posted is offered.
fn embeddings_config(base: &str, extra: &str) -> String {
    format!(
        r#"
[drift]
current_window = "1h"
buckets = 1
text_capacity = 100

[embeddings]
base_url = "{base}"
model = "fake-embedding"
batch_size = 8
max_batch_delay = "100ms"
{extra}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_embeddings_are_batched_and_cached() {
    let (fake, base) = start_fake().await;
    let service = Service::start(&embeddings_config(&base, "cache_capacity = 100")).await;
    let questions: Vec<String> = (0..20).map(|i| format!("billing question {i}")).collect();

    // 20 texts at once: batches of 8, 8 and 4.
    service.post_responses(&questions).await;
    let metrics = service
        .scrape_until("20 embedded texts", |m| {
            m.value("llmwatch_embedding_texts_total", &texts("embedded")) == 20.0
        })
        .await;
    assert_eq!(fake.embedding_batches(), [8, 8, 4]);
    assert_eq!(
        metrics.value(
            "llmwatch_embedding_requests_total",
            &Labels::new(&[("outcome", "ok")])
        ),
        3.0
    );
    assert_eq!(fake.embeddings.lock().unwrap()[0][0], "billing question 0");

    // The same texts again come from the cache; a text twice in one batch is sent once.
    service.post_responses(&questions).await;
    let repeated = vec!["shipping question 1".to_owned(); 2];
    service.post_responses(&repeated).await;
    let metrics = service
        .scrape_until("21 cache hits", |m| {
            m.value("llmwatch_embedding_texts_total", &texts("cache_hit")) == 21.0
                && m.value("llmwatch_embedding_texts_total", &texts("embedded")) == 21.0
        })
        .await;
    assert_eq!(fake.embedding_batches(), [8, 8, 4, 1]);
    for (result, count) in [
        ("embedded", 21.0),
        ("cache_hit", 21.0),
        ("dropped_queue_full", 0.0),
        ("dropped_budget", 0.0),
        ("failed", 0.0),
    ] {
        assert_eq!(
            metrics.value("llmwatch_embedding_texts_total", &texts(result)),
            count,
            "{result}"
        );
    }
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_over_the_token_budget_are_dropped_and_counted() {
    let (fake, base) = start_fake().await;
    // 40-byte texts are estimated at 10 tokens: 10 of them fit in 100 tokens an hour.
    let service = Service::start(&embeddings_config(&base, "max_tokens_per_hour = 100")).await;
    let questions: Vec<String> = (0..20)
        .map(|i| format!("billing question number {i:016}"))
        .collect();
    assert!(questions.iter().all(|q| q.len() == 40));
    service.post_responses(&questions).await;
    let metrics = service
        .scrape_until("20 texts accounted for", |m| {
            m.value("llmwatch_embedding_texts_total", &texts("embedded"))
                + m.value("llmwatch_embedding_texts_total", &texts("dropped_budget"))
                == 20.0
        })
        .await;
    assert_eq!(
        metrics.value("llmwatch_embedding_texts_total", &texts("embedded")),
        10.0
    );
    assert_eq!(
        metrics.value("llmwatch_embedding_texts_total", &texts("dropped_budget")),
        10.0
    );
    assert_eq!(fake.embedding_batches(), [8, 2]);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_texts_without_waiting() {
    let (fake, base) = start_fake().await;
    fake.hold_embeddings.store(true, Ordering::SeqCst);
    let service = Service::start(&embeddings_config(
        &base,
        "queue_capacity = 4\ntimeout = \"20s\"",
    ))
    .await;
    // The worker takes one text and waits for the endpoint.
    service
        .post_responses(&["shipping question 0".to_owned()])
        .await;
    wait_until("the first embeddings request", || {
        fake.embedding_batches().len() == 1
    })
    .await;
    // Ten more: four fit in the queue, six are dropped as ingest offers them.
    let started = Instant::now();
    let more: Vec<String> = (1..=10).map(|i| format!("shipping question {i}")).collect();
    service.post_responses(&more).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let metrics = service.scrape().await;
    assert_eq!(
        metrics.value(
            "llmwatch_embedding_texts_total",
            &texts("dropped_queue_full")
        ),
        6.0
    );
    assert_eq!(
        metrics.value("llmwatch_embedding_texts_total", &texts("embedded")),
        0.0
    );
    fake.hold_embeddings.store(false, Ordering::SeqCst);
    let metrics = service
        .scrape_until("5 embedded texts", |m| {
            m.value("llmwatch_embedding_texts_total", &texts("embedded")) == 5.0
        })
        .await;
    assert_eq!(fake.embedding_batches(), [1, 4]);
    assert_eq!(
        metrics.value(
            "llmwatch_embedding_texts_total",
            &texts("dropped_queue_full")
        ),
        6.0
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_drift_is_computed_from_the_remote_vectors() {
    let (fake, base) = start_fake().await;
    let service = Service::start(&format!(
        r#"
[drift]
interval = "1s"
reference_size = 20
min_samples = 20
text_capacity = 64
consecutive = 1

[embeddings]
base_url = "{base}"
model = "fake-embedding"
batch_size = 8
max_batch_delay = "50ms"
"#
    ))
    .await;
    // The first 20 calls (the reference) are about billing, the next 40 about shipping.
    let billing: Vec<String> = (0..20).map(|i| format!("billing question {i}")).collect();
    service.post_responses(&billing).await;
    service
        .scrape_until("the reference embedded", |m| {
            m.value("llmwatch_embedding_texts_total", &texts("embedded")) == 20.0
        })
        .await;
    let shipping: Vec<String> = (0..40).map(|i| format!("shipping question {i}")).collect();
    service.post_responses(&shipping).await;
    let key = |extra: &[(&str, &str)]| {
        Labels::new(&[
            ("service_name", "support"),
            ("gen_ai_provider_name", "openai"),
            ("gen_ai_request_model", "gpt-4o"),
            ("signal", "response_embedding"),
        ])
        .and(extra)
    };
    let metrics = service
        .scrape_until("response embedding drift on 20 + 60 vectors", |m| {
            m.get(
                "llmwatch_drift_window_samples",
                &key(&[("window", "current")]),
            ) == Some(60.0)
        })
        .await;
    assert_eq!(fake.embedding_batches(), [8, 8, 4, 8, 8, 8, 8, 8]);
    assert_eq!(
        metrics.value(
            "llmwatch_drift_window_samples",
            &key(&[("window", "reference")])
        ),
        20.0
    );
    // Reference: 20 × e1. Current window: those 20 × e1 and 40 × e2. Pooled median squared
    // distance 2, so σ = 1 and k(e1, e2) = e^-1; unbiased MMD² = mean k within the reference
    // (1) + mean k over distinct pairs of the current ((380 + 1560 + 1600/e) / 3540) − 2 ×
    // mean k across ((400 + 800/e) / 1200). Only the remote vectors give this value.
    let k = (-1.0f64).exp();
    let expected =
        1.0 + (380.0 + 1560.0 + 1600.0 * k) / 3540.0 - 2.0 * (400.0 + 800.0 * k) / 1200.0;
    let score = metrics.value("llmwatch_drift_score", &key(&[("test", "mmd")]));
    assert!((score - expected).abs() < 1e-12, "{score} vs {expected}");
    assert_eq!(
        metrics.value("llmwatch_drift_p_value", &key(&[("test", "mmd")])),
        1.0 / 101.0
    );
    assert_eq!(metrics.value("llmwatch_drift_detected", &key(&[])), 1.0);
    // No prompt was captured: that signal has no samples, remote or built-in.
    assert_eq!(
        metrics.get(
            "llmwatch_drift_window_samples",
            &key(&[("window", "current")]).and(&[("signal", "prompt_embedding")])
        ),
        None
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_requests_are_retried_and_failures_counted() {
    let (fake, base) = start_fake().await;
    fake.embedding_failures.lock().unwrap().push_back(429);
    let service = Service::start(&embeddings_config(
        &base,
        "backoff = { initial = \"10ms\", max = \"50ms\" }",
    ))
    .await;
    let requests = |m: &Metrics, outcome| {
        m.value(
            "llmwatch_embedding_requests_total",
            &Labels::new(&[("outcome", outcome)]),
        )
    };
    // Rate limited once, then embedded.
    service
        .post_responses(&[
            "billing question 0".to_owned(),
            "billing question 1".to_owned(),
        ])
        .await;
    let metrics = service
        .scrape_until("2 embedded texts", |m| {
            m.value("llmwatch_embedding_texts_total", &texts("embedded")) == 2.0
        })
        .await;
    assert_eq!(
        (requests(&metrics, "rate_limited"), requests(&metrics, "ok")),
        (1.0, 1.0)
    );
    // Three server errors use up max_attempts (3): the text fails, and is not embedded locally.
    fake.embedding_failures
        .lock()
        .unwrap()
        .extend([500, 500, 500]);
    service
        .post_responses(&["shipping question 0".to_owned()])
        .await;
    let metrics = service
        .scrape_until("1 failed text", |m| {
            m.value("llmwatch_embedding_texts_total", &texts("failed")) == 1.0
        })
        .await;
    assert_eq!(requests(&metrics, "server_error"), 3.0);
    assert_eq!(requests(&metrics, "ok"), 1.0);
    assert_eq!(
        metrics.value("llmwatch_embedding_texts_total", &texts("embedded")),
        2.0
    );
    assert_eq!(fake.embedding_batches(), [2, 2, 1, 1, 1]);
    service.stop().await;
}
