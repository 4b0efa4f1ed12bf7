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
