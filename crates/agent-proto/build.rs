//! Compiles `proto/osiris/agent/v1/agent.proto` into Rust with tonic-prost-build, using the protoc
//! that ships inside `protoc-bin-vendored` (no system protoc).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let proto = root.join("osiris/agent/v1/agent.proto");
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        // Maps iterate in key order, so anything built from them is deterministic.
        .btree_map(".")
        // The generated `AgentGatewayClient::connect(uri)` constructor would clash with the
        // `Connect` call's method; clients are built with `gateway_client` over `endpoint`.
        .build_transport(false)
        .compile_with_config(config, &[proto], &[root])?;
    Ok(())
}
