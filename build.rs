//! Compiles the wire contract in `proto/corridor/v1` with a vendored protoc, so a
//! fresh machine needs nothing but cargo.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/corridor/v1/common.proto",
        "proto/corridor/v1/envelope.proto",
        "proto/corridor/v1/pacs008.proto",
        "proto/corridor/v1/pacs002.proto",
        "proto/corridor/v1/pacs004.proto",
        "proto/corridor/v1/camt056.proto",
        "proto/corridor/v1/camt029.proto",
        "proto/corridor/v1/camt053.proto",
        "proto/corridor/v1/fx.proto",
        "proto/corridor/v1/hub_service.proto",
        "proto/corridor/v1/bank_service.proto",
        "proto/corridor/v1/admin_service.proto",
        "proto/corridor/v1/loopback.proto",
    ];
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Payloads are carried, not copied: `bytes::Bytes` shares one buffer from socket to journal.
    config.bytes(["."]);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("corridor_descriptor.bin"))
        .compile_with_config(config, &protos, &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
