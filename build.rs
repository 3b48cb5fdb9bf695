//! Compiles `proto/` with protox (pure Rust: no system `protoc`), writes the
//! encoded descriptor set for server reflection, and generates the tonic server
//! and client from it.

use std::{env, fs, path::PathBuf};

use prost::Message as _;

/// The contract's files: the service and its messages, and the `ErrorInfo`
/// reasons as an enum. One descriptor set holds both, so reflection serves
/// both.
const PROTOS: [&str; 2] = [
    "proto/cognito/verify/v1/verification.proto",
    "proto/cognito/verify/v1/error_reason.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::Compiler::new(["proto"])?
        .include_imports(true)
        .include_source_info(true)
        .open_files(PROTOS)?
        .file_descriptor_set();

    // `compile_fds` does not write the descriptor set; reflection needs it.
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("cognito_verify_descriptor.bin"),
        fds.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
