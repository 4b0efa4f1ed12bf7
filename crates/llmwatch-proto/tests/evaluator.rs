//! The generated Evaluator client and server talk to each other over loopback.

use llmwatch_proto::{
    EvaluateRequest, EvaluateResponse, Evaluator, EvaluatorClient, EvaluatorServer, Score,
};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// Scores the length of the answer and echoes the safety flags.
#[derive(Debug)]
struct Length;

#[tonic::async_trait]
impl Evaluator for Length {
    async fn evaluate(
        &self,
        request: Request<EvaluateRequest>,
    ) -> Result<Response<EvaluateResponse>, Status> {
        let call = request.into_inner();
        Ok(Response::new(EvaluateResponse {
            scores: vec![Score {
                name: "short_answer".into(),
                value: Some(if call.output.len() <= 5 { 1.0 } else { 0.0 }),
                label: call.safety_flags.join(","),
                explanation: format!("{} bytes", call.output.len()),
                flagged: false,
            }],
        }))
    }
}

#[tokio::test]
async fn client_and_server_round_trip_every_field() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(EvaluatorServer::new(Length))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let mut client = EvaluatorClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let answer = client
        .evaluate(EvaluateRequest {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            output: "four".into(),
            safety_flags: vec!["pii_email".into(), "refusal".into()],
            ..EvaluateRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.scores,
        [Score {
            name: "short_answer".into(),
            value: Some(1.0),
            label: "pii_email,refusal".into(),
            explanation: "4 bytes".into(),
            flagged: false,
        }]
    );
}
