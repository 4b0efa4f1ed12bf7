//! The real `llmwatch` binary: memory stays bounded under unbounded label cardinality, and the
//! `config check` and `replay` commands behave as documented.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

const BIN: &str = env!("CARGO_BIN_EXE_llmwatch");

/// The child process, killed when the test ends however it ends.
struct Running {
    child: Child,
    otlp_http: String,
    metrics: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes ANSI escape sequences, in case the log is coloured.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn field(line: &str, name: &str) -> Option<String> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    Some(
        line[start..]
            .split_whitespace()
            .next()?
            .trim_matches('"')
            .to_owned(),
    )
}

/// Starts `llmwatch serve` on loopback port 0 and reads the bound addresses from its log.
fn serve(dir: &Path, max_series: usize) -> Running {
    let config = dir.join("llmwatch.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n\n[server]\notlp_grpc = \"127.0.0.1:0\"\notlp_http = \"127.0.0.1:0\"\n\
             metrics = \"127.0.0.1:0\"\n\n[limits]\nmax_series_per_metric = {max_series}\n",
            dir.join("data")
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env("LLMWATCH_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn llmwatch serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        // Keep draining after the addresses, so the child never blocks on a full pipe.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let line = strip_ansi(&line);
            if !sent && line.contains("listening") {
                let _ = tx.send((field(&line, "otlp_http"), field(&line, "metrics")));
                sent = true;
            }
        }
    });
    let (otlp_http, metrics) = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok((Some(http), Some(metrics))) => (http, metrics),
        other => {
            let _ = child.kill();
            panic!("llmwatch serve did not log its addresses: {other:?}");
        }
    };
    Running {
        child,
        otlp_http,
        metrics,
    }
}

fn attribute(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn chat(n: u64, model: &str) -> Span {
    let mut trace_id = vec![7u8; 16];
    trace_id[8..].copy_from_slice(&(n + 1).to_be_bytes());
    Span {
        trace_id,
        span_id: (n + 1).to_be_bytes().to_vec(),
        name: format!("chat {model}"),
        kind: 3,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_400_000_000,
        attributes: vec![
            attribute("gen_ai.operation.name", Value::StringValue("chat".into())),
            attribute("gen_ai.provider.name", Value::StringValue("openai".into())),
            attribute("gen_ai.request.model", Value::StringValue(model.into())),
            attribute("gen_ai.usage.input_tokens", Value::IntValue(20)),
            attribute("gen_ai.usage.output_tokens", Value::IntValue(2)),
        ],
        ..Default::default()
    }
}

fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attribute(
                    "service.name",
                    Value::StringValue(service.into()),
                )],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The value of the sample `name` whose labels include every `name="value"` given (the
/// exposition writes labels in a fixed order, but this does not rely on it).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
        if series_name != name {
            continue;
        }
        if labels
            .iter()
            .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")))
        {
            assert!(found.is_none(), "two samples {name} {labels:?}");
            found = Some(value.parse().unwrap());
        }
    }
    found
}

#[test]
fn memory_stays_bounded_under_a_hundred_thousand_models() {
    const LIMIT: usize = 1000;
    const MODELS: u64 = 100_000;
    const BATCH: u64 = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), LIMIT);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = format!("http://{}/v1/traces", server.otlp_http);
    let mut after_first = 0;
    for batch in 0..MODELS / BATCH {
        let spans = (batch * BATCH..(batch + 1) * BATCH)
            .map(|i| chat(i, &format!("model-{i:06}-{}", "x".repeat(40))))
            .collect();
        let response = client
            .post(&url)
            .header("content-type", "application/x-protobuf")
            .body(request("cardinality", spans).encode_to_vec())
            .send()
            .expect("export");
        assert_eq!(response.status(), 200);
        if batch == 1 {
            after_first = rss_kib(server.child.id());
        }
    }
    let rss = rss_kib(server.child.id());
    let metrics = client
        .get(format!("http://{}/metrics", server.metrics))
        .send()
        .unwrap()
        .text()
        .unwrap();
    eprintln!("VmRSS after 10k spans: {after_first} KiB; after 100k distinct models: {rss} KiB");
    assert!(rss < 200 * 1024, "VmRSS {rss} KiB");
    // Past the limit, new models cost nothing: no growth beyond allocator noise.
    assert!(
        rss < after_first + 32 * 1024,
        "VmRSS grew from {after_first} KiB to {rss} KiB"
    );
    let value = |name: &str, labels: &[(&str, &str)]| {
        sample(&metrics, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?}"))
    };
    assert_eq!(value("llmwatch_series_limit", &[]), LIMIT as f64);
    assert_eq!(value("llmwatch_label_sets", &[]), (LIMIT + 1) as f64);
    assert_eq!(
        value("llmwatch_series", &[("metric", "llmwatch_llm_calls_total")]),
        (LIMIT + 1) as f64
    );
    assert_eq!(
        value(
            "llmwatch_llm_calls_total",
            &[("otel_metric_overflow", "true")]
        ),
        (MODELS - LIMIT as u64) as f64
    );
    assert_eq!(
        value("llmwatch_series_overflow_records_total", &[]),
        (MODELS - LIMIT as u64) as f64
    );
    assert_eq!(
        value(
            "llmwatch_received_spans_total",
            &[("transport", "http_protobuf")]
        ),
        MODELS as f64
    );
    // The process metrics agree with /proc.
    let resident = value("process_resident_memory_bytes", &[]);
    assert!(resident < 200.0 * 1024.0 * 1024.0, "{resident}");
}

#[test]
fn config_check_accepts_a_good_file_and_names_file_and_key_of_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[server]\nmax_request_bytes = 4194304\n\n[limits]\nmax_series_per_metric = 500\n\
         series_idle_timeout = \"15m\"\n\n[[dimensions]]\nlabel = \"feature\"\n\
         attributes = [\"app.feature\"]\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["config", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{}: ok\n", good.display())
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[limits]\nmax_series_per_metric = \"lots\"\n").unwrap();
    let output = Command::new(BIN)
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "llmwatch: {}: key `limits.max_series_per_metric`: ",
        bad.display()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");

    let invalid = dir.path().join("invalid.toml");
    std::fs::write(
        &invalid,
        "[[dimensions]]\nlabel = \"app-feature\"\nattributes = [\"app.feature\"]\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["config", "check"])
        .arg(&invalid)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(&format!(
            "llmwatch: {}: key `dimensions[0].label`: expected a Prometheus label name",
            invalid.display()
        )),
        "{stderr}"
    );

    // Client settings that only fail when serve starts the client (an API key variable that is
    // not set) still name the file and the key.
    let servers = "[server]\notlp_grpc = \"127.0.0.1:0\"\notlp_http = \"127.0.0.1:0\"\nmetrics = \"127.0.0.1:0\"\n";
    let key_line = "api_key_env = \"LLMWATCH_SURELY_UNSET_KEY\"\n";
    let judge = format!(
        "[judge]\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"judge-model\"\n{key_line}\
         [[judge.rubric]]\nname = \"correctness\"\nscale_min = 1\nscale_max = 5\n\
         instructions = \"Is the answer correct?\"\n"
    );
    let canary = format!(
        "[[canaries]]\nname = \"probe\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n\
         prompt = \"Say OK\"\ncontains = [\"OK\"]\n{key_line}"
    );
    for (name, section, key) in [
        ("judge.toml", judge, "judge.api_key_env"),
        ("canary.toml", canary, "canaries[0].api_key_env"),
    ] {
        let file = dir.path().join(name);
        let text = format!("{servers}{section}");
        std::fs::write(&file, text).unwrap();
        let output = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&file)
            .env_remove("LLMWATCH_SURELY_UNSET_KEY")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "llmwatch: {}: key `{key}`: the variable LLMWATCH_SURELY_UNSET_KEY is not set",
                file.display()
            )),
            "{stderr}"
        );
    }

    let missing = dir.path().join("missing.toml");
    let output = Command::new(BIN)
        .args(["config", "check"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(&format!("llmwatch: {}: cannot read", missing.display())),
        "{stderr}"
    );
}

#[test]
fn replay_of_an_otlp_json_file_prints_exact_counters() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("capture.json");
    std::fs::write(
        &file,
        r#"{"resourceSpans":[{"resource":{"attributes":[
            {"key":"service.name","value":{"stringValue":"replayed"}}]},
          "scopeSpans":[{"spans":[
            {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331",
             "name":"chat gpt-4o","kind":"SPAN_KIND_CLIENT",
             "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000002000000000",
             "attributes":[
              {"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},
              {"key":"gen_ai.provider.name","value":{"stringValue":"openai"}},
              {"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}},
              {"key":"gen_ai.response.model","value":{"stringValue":"gpt-4o-2024-08-06"}},
              {"key":"gen_ai.usage.input_tokens","value":{"intValue":"1500"}},
              {"key":"gen_ai.usage.output_tokens","value":{"intValue":"120"}},
              {"key":"gen_ai.response.finish_reasons","value":{"arrayValue":{"values":[
                {"stringValue":"stop"}]}}}]},
            {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203332",
             "name":"chat gpt-4o","kind":"SPAN_KIND_CLIENT",
             "startTimeUnixNano":"1700000003000000000","endTimeUnixNano":"1700000003500000000",
             "attributes":[
              {"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},
              {"key":"gen_ai.provider.name","value":{"stringValue":"openai"}},
              {"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}},
              {"key":"gen_ai.response.model","value":{"stringValue":"gpt-4o-2024-08-06"}},
              {"key":"gen_ai.usage.input_tokens","value":{"intValue":"500"}},
              {"key":"gen_ai.usage.output_tokens","value":{"intValue":"30"}},
              {"key":"gen_ai.response.finish_reasons","value":{"arrayValue":{"values":[
                {"stringValue":"length"}]}}}]},
            {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203333",
             "name":"chat gpt-4o","kind":"SPAN_KIND_CLIENT",
             "startTimeUnixNano":"1700000004000000000","endTimeUnixNano":"1700000004100000000",
             "status":{"code":"STATUS_CODE_ERROR","message":"rate limited"},
             "attributes":[
              {"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},
              {"key":"gen_ai.provider.name","value":{"stringValue":"openai"}},
              {"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}},
              {"key":"error.type","value":{"stringValue":"RateLimitError"}}]}
          ]}]}]}"#,
    )
    .unwrap();
    let output = Command::new(BIN).arg("replay").arg(&file).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let ok = [
        ("service_name", "replayed"),
        ("gen_ai_request_model", "gpt-4o"),
        ("gen_ai_response_model", "gpt-4o-2024-08-06"),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut labels = ok.to_vec();
        labels.push(extra);
        labels
    };
    let value = |name: &str, labels: &[(&str, &str)]| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    assert_eq!(
        value("llmwatch_llm_calls_total", &with(("error_type", ""))),
        2.0
    );
    assert_eq!(
        value(
            "llmwatch_llm_calls_total",
            &[
                ("service_name", "replayed"),
                ("gen_ai_response_model", ""),
                ("error_type", "RateLimitError")
            ]
        ),
        1.0
    );
    assert_eq!(
        value("llmwatch_tokens_total", &with(("token_type", "input"))),
        2000.0
    );
    assert_eq!(
        value("llmwatch_tokens_total", &with(("token_type", "output"))),
        150.0
    );
    assert_eq!(
        value(
            "llmwatch_finish_reasons_total",
            &with(("finish_reason", "stop"))
        ),
        1.0
    );
    assert_eq!(
        value(
            "llmwatch_finish_reasons_total",
            &with(("finish_reason", "length"))
        ),
        1.0
    );
    let duration = "gen_ai_client_operation_duration_seconds";
    let bucket = |le: &'static str| {
        let mut labels = with(("error_type", ""));
        labels.push(("le", le));
        value(&format!("{duration}_bucket"), &labels)
    };
    assert_eq!(bucket("0.32"), 0.0);
    assert_eq!(bucket("0.64"), 1.0);
    assert_eq!(bucket("1.28"), 1.0);
    assert_eq!(bucket("2.56"), 2.0);
    assert_eq!(
        value(&format!("{duration}_sum"), &with(("error_type", ""))),
        2.5
    );
    assert_eq!(
        value("llmwatch_received_spans_total", &[("transport", "file")]),
        3.0
    );
    assert_eq!(
        value("llmwatch_received_spans_total", &[("transport", "grpc")]),
        0.0
    );
    // Replay prints what /metrics would show, without process metrics.
    assert!(!text.contains("process_resident_memory_bytes"));
}
