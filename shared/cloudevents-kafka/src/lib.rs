//! The suite's CloudEvents Kafka protocol binding, binary content mode.
//!
//! Every context attribute and extension of a [`cloudevents::Event`] travels
//! as a `ce_`-prefixed header; the data is the message value. Besides
//! `ce_datacontenttype`, the binding's standard `content-type` header is
//! written with the same value, and either is accepted on read.
//!
//! Encoding is deterministic (fixed header order, extensions in a fixed
//! order) so that a retried publish is byte-identical. Decoding never panics:
//! every malformed input is a [`DecodeError`] naming the header or field.
//!
//! This is our own binding rather than cloudevents-sdk's `rdkafka` feature,
//! which pins an older rdkafka built with cmake.

mod decode;
mod encode;
mod error;
pub mod ext;
mod lambda;
pub mod trace;

pub use cloudevents::{
    AttributesReader, AttributesWriter, Data, Event, EventBuilder, EventBuilderV10,
};
pub use decode::{decode, decode_message};
pub use encode::{BinaryMessage, encode};
pub use error::DecodeError;
pub use lambda::{LambdaRecordParts, decode_lambda_record};
pub use trace::TraceContext;

/// Header name prefix of every CloudEvents attribute.
pub const CE_PREFIX: &str = "ce_";
/// The Kafka binding's standard content type header.
pub const CONTENT_TYPE: &str = "content-type";
