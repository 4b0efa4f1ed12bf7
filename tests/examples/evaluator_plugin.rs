//! The example evaluator plugin as a program: `cargo run -p llmwatch-tests --example
//! evaluator_plugin -- 127.0.0.1:50051`, then add it to llmwatch's config as `[[evaluators]]`
//! (see docs/quality.md).

use llmwatch_tests::evaluator_plugin::{HouseStyle, serve};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:50051".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("house-style evaluator listening on {addr}");
    serve(HouseStyle::default(), listener).await?;
    Ok(())
}
