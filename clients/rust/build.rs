//! Generates the tonic client (no server) from the service's own protos with
//! protox (pure Rust: no system `protoc`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto");
    let fds = protox::Compiler::new(["../../proto"])?
        .include_imports(true)
        .open_files([
            "cognito/verify/v1/verification.proto",
            "cognito/verify/v1/error_reason.proto",
        ])?
        .file_descriptor_set();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        // They hold the access token and the code: lib.rs gives them a
        // Debug that redacts both.
        .skip_debug([
            ".cognito.verify.v1.GetUserAttributeVerificationCodeRequest",
            ".cognito.verify.v1.VerifyUserAttributeRequest",
        ])
        .compile_fds(fds)?;
    Ok(())
}
