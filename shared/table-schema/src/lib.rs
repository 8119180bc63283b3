//! The schema of the one DynamoDB table, in one place and without the AWS
//! SDK: what storage writes and the stream publisher reads.
//!
//! - [`keys`]: the key formats (`pk`, `sk`) of every item;
//! - [`attribute`]: the attribute names;
//! - [`index`]: the keys of the condition index's items;
//! - [`head`]: the head item, its [`HeadState`]s with their wire strings,
//!   and what its new image means ([`HeadItem::change_of_image`]);
//! - [`stream`]: which stream records are a head item's changes, for the
//!   stream's consumers (publisher and indexer).
//!
//! Item layout and commit protocol are described in `docs/storage.md`.

pub mod attribute;
pub mod head;
pub mod index;
pub mod keys;
pub mod stream;

pub use head::{Bytes, HeadError, HeadItem, HeadState};

/// Milliseconds since the Unix epoch (every time in the table) → protobuf
/// Timestamp.
pub fn timestamp_from_millis(ms: i64) -> evidentsource_proto::Timestamp {
    evidentsource_proto::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}
