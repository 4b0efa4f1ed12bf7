//! Drift baselines through the running service: the admin API on the metrics listener lists,
//! pins and resets them; they are saved to the data directory at shutdown and restored at the
//! next start; a corrupt state file is set aside without stopping the service.

use llmwatch_core::ProcessorConfig;
use llmwatch_core::drift::{DriftConfig, ReferenceMode};
use llmwatch_tests::{TestServer, V, chat_span, loopback_config, request};
use serde_json::Value;

fn drift_config() -> ProcessorConfig {
    ProcessorConfig {
        drift: DriftConfig {
            reference: ReferenceMode::FirstN(5),
            ..DriftConfig::default()
        },
        ..ProcessorConfig::default()
    }
}

async fn json(server: &TestServer, method: reqwest::Method, path: &str) -> Value {
    let url = format!("http://{}{path}", server.addrs.metrics);
    let response = server
        .http
        .request(method, &url)
        .send()
        .await
        .expect("admin API answers");
    assert_eq!(response.status(), 200, "{path}");
    serde_json::from_str(&response.text().await.expect("body")).expect("JSON body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baselines_are_managed_over_http_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("drift-state.json");
    std::fs::write(&state_file, b"{ this is not drift state").unwrap();
    let mut config = loopback_config();
    config.drift_state_file = Some(state_file.clone());

    // The corrupt file is set aside and the service starts with fresh baselines.
    let server = TestServer::start_with(config.clone(), drift_config()).await;
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("drift-state.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(!state_file.exists());

    let spans = (0..8)
        .map(|i| chat_span(i, "gpt-4o", V::I(100 + i as i64), V::I(20)))
        .collect();
    assert_eq!(
        server
            .post_protobuf(&request("checkout", spans))
            .await
            .status,
        200
    );
    let listed = json(&server, reqwest::Method::GET, "/api/v1/drift/baselines").await;
    let baselines = listed["baselines"].as_array().unwrap();
    assert_eq!(baselines.len(), 1);
    assert_eq!(baselines[0]["reference_calls"], 5);
    assert_eq!(baselines[0]["mode"], "first_n");
    assert_eq!(
        baselines[0]["labels"],
        serde_json::json!([
            ["service_name", "checkout"],
            ["gen_ai_provider_name", "openai"],
            ["gen_ai_request_model", "gpt-4o"]
        ])
    );
    let none = json(
        &server,
        reqwest::Method::POST,
        "/api/v1/drift/baselines/pin?service_name=other",
    )
    .await;
    assert_eq!(none, serde_json::json!({ "pinned": 0 }));
    server.stop().await;

    // Saved at shutdown, restored at the next start.
    let saved: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(saved["version"], 1);
    let server = TestServer::start_with(config, drift_config()).await;
    let listed = json(&server, reqwest::Method::GET, "/api/v1/drift/baselines").await;
    assert_eq!(listed["baselines"][0]["reference_calls"], 5);
    let reset = json(
        &server,
        reqwest::Method::DELETE,
        "/api/v1/drift/baselines?gen_ai_request_model=gpt-4o",
    )
    .await;
    assert_eq!(reset, serde_json::json!({ "reset": 1 }));
    let listed = json(&server, reqwest::Method::GET, "/api/v1/drift/baselines").await;
    assert_eq!(listed["baselines"][0]["reference_calls"], 0);
    server.stop().await;
}

/// With `pin_after`, the current windows become the references once the service has run that
/// long, without anyone calling the admin API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_pin_takes_the_current_window() {
    let mut config = loopback_config();
    config.drift_pin_after = Some(std::time::Duration::from_millis(400));
    let processor = ProcessorConfig {
        drift: DriftConfig {
            reference: ReferenceMode::Pinned,
            ..DriftConfig::default()
        },
        ..ProcessorConfig::default()
    };
    let server = TestServer::start_with(config, processor).await;
    // Live calls: ending now, so they are in the current window when the pin happens.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let spans = (0..6)
        .map(|i| {
            let mut span = chat_span(i, "gpt-4o", V::I(100), V::I(20 + i as i64));
            span.start_time_unix_nano = now - 500_000_000;
            span.end_time_unix_nano = now;
            span
        })
        .collect();
    assert_eq!(
        server
            .post_protobuf(&request("checkout", spans))
            .await
            .status,
        200
    );
    let output_reference = |listed: &Value| {
        listed["baselines"][0]["reference_samples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|pair| pair[0] == "output_tokens")
            .map(|pair| pair[1].as_u64().unwrap())
    };
    let before = json(&server, reqwest::Method::GET, "/api/v1/drift/baselines").await;
    assert_eq!(before["baselines"][0]["mode"], "pinned");
    assert_eq!(output_reference(&before), Some(0));
    let mut pinned = None;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let listed = json(&server, reqwest::Method::GET, "/api/v1/drift/baselines").await;
        if output_reference(&listed) == Some(6) {
            pinned = Some(listed);
            break;
        }
    }
    assert!(
        pinned.is_some(),
        "the scheduled pin did not happen within 5 s"
    );
    server.stop().await;
}
