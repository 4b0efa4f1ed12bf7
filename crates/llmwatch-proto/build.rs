//! Compiles llmwatch's .proto files with protox (pure Rust, no system `protoc`) and generates the
//! prost messages and tonic clients and servers into OUT_DIR.

use std::path::PathBuf;

/// The .proto files under `<workspace>/proto`; adding an API is one line here.
const PROTOS: &[&str] = &["llmwatch/v1/evaluator.proto", "llmwatch/v1/feedback.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&root])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
