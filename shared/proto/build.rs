//! Generates the contract types from the top-level `proto/` directory with
//! protox (a pure-Rust protobuf compiler), so no system `protoc` is needed.

use std::{env, error::Error, fs, path::PathBuf};

use prost::Message as _;

const FILES: &[&str] = &[
    "io/cloudevents/v1/cloudevents.proto",
    "evidentsource/v1/database.proto",
    "evidentsource/v1/commands.proto",
    "evidentsource/v1/query.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    let proto_root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed={}", proto_root.display());
    for file in FILES {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    }

    // google/protobuf/*.proto are built into protox.
    let descriptors = protox::compile(FILES, [&proto_root])?;
    let descriptor_bytes = descriptors.encode_to_vec();
    fs::write(out_dir.join("descriptor.bin"), &descriptor_bytes)?;

    // Well-known types come from pbjson-types so that every message also gets
    // serde impls following the protobuf JSON mapping.
    // BTreeMap for map fields: encoding is then deterministic, which stored
    // events and request fingerprints rely on.
    prost_build::Config::new()
        .prost_types_path("::pbjson_types")
        .btree_map(["."])
        .compile_fds(descriptors)?;

    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .btree_map(["."])
        .build(&[".evidentsource.v1", ".io.cloudevents.v1"])?;
    Ok(())
}
