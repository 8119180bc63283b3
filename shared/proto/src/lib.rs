//! The suite's protobuf contract as Rust types.
//!
//! The `.proto` files in the repository's top-level `proto/` directory are the
//! source of truth (consumers in other languages compile the same files); this
//! crate generates Rust types from them at build time. Every message supports
//! the binary encoding (prost) and the protobuf JSON mapping (serde, through
//! pbjson).

#![allow(clippy::all, clippy::pedantic)]

/// `package evidentsource.v1`.
pub mod evidentsource {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/evidentsource.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/evidentsource.v1.serde.rs"));
    }
}

/// `package io.cloudevents.v1`: the CloudEvents specification's Protobuf Format.
pub mod io {
    pub mod cloudevents {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/io.cloudevents.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/io.cloudevents.v1.serde.rs"));
        }
    }
}

pub use evidentsource::v1::*;
pub use io::cloudevents::v1 as cloudevents;
pub use pbjson_types::Timestamp;
pub use prost::Message;

/// The encoded `FileDescriptorSet` of every contract file, for reflection
/// (e.g. a schema registry or a dynamic decoder).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));
