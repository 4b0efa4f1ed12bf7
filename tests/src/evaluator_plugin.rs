//! An example evaluator plugin: what a team writes to plug its own checks into llmwatch's
//! sample-and-judge pipeline (`proto/llmwatch/v1/evaluator.proto`). Run it alone with
//! `cargo run -p llmwatch-tests --example evaluator_plugin -- 127.0.0.1:50051` and point
//! llmwatch at it:
//!
//! ```toml
//! [[evaluators]]
//! name = "house-style"
//! endpoint = "http://127.0.0.1:50051"
//! timeout = "2s"
//! ```
//!
//! It gives every call two scores: `concise` (1 for answers of at most 50 words, then 50/words)
//! and `no_placeholder` (0 and flagged when the answer still holds placeholder text such as
//! "lorem ipsum" or "TODO"). It remembers the calls it saw, for the tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use llmwatch_proto::{EvaluateRequest, EvaluateResponse, Evaluator, EvaluatorServer, Score};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// Words an answer may have before `concise` drops below 1.
pub const CONCISE_WORDS: usize = 50;

/// The example evaluator.
#[derive(Debug, Clone, Default)]
pub struct HouseStyle {
    /// Every request received, in order.
    pub seen: Arc<Mutex<Vec<EvaluateRequest>>>,
}

/// The scores for one answer.
pub fn scores(output: &str) -> Vec<Score> {
    let words = output.split_whitespace().count();
    let concise = if words <= CONCISE_WORDS {
        1.0
    } else {
        CONCISE_WORDS as f64 / words as f64
    };
    let lower = output.to_lowercase();
    let placeholder = ["lorem ipsum", "todo", "[insert"]
        .iter()
        .find(|p| lower.contains(*p));
    vec![
        Score {
            name: "concise".into(),
            value: Some(concise),
            label: if concise == 1.0 { "concise" } else { "long" }.into(),
            explanation: format!("{words} words"),
            flagged: false,
        },
        Score {
            name: "no_placeholder".into(),
            value: Some(if placeholder.is_some() { 0.0 } else { 1.0 }),
            label: if placeholder.is_some() {
                "fail"
            } else {
                "pass"
            }
            .into(),
            explanation: placeholder
                .map(|p| format!("the answer contains {p:?}"))
                .unwrap_or_default(),
            flagged: placeholder.is_some(),
        },
    ]
}

#[tonic::async_trait]
impl Evaluator for HouseStyle {
    async fn evaluate(
        &self,
        request: Request<EvaluateRequest>,
    ) -> Result<Response<EvaluateResponse>, Status> {
        let call = request.into_inner();
        let answer = EvaluateResponse {
            scores: scores(&call.output),
        };
        self.seen.lock().expect("seen").push(call);
        Ok(Response::new(answer))
    }
}

/// Serves `plugin` on `listener` until the task is dropped.
pub async fn serve(
    plugin: HouseStyle,
    listener: TcpListener,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(EvaluatorServer::new(plugin))
        .serve_with_incoming(TcpListenerStream::new(listener))
        .await
}

/// Starts the plugin on a free loopback port; returns it and its address.
pub async fn start() -> (HouseStyle, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let plugin = HouseStyle::default();
    tokio::spawn(serve(plugin.clone(), listener));
    (plugin, addr)
}
