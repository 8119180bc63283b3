//! The async command contract (docs/contract.md §5).
//!
//! A command is a CloudEvent in binary mode on the Async Commands topic:
//! `ce_type` names it, the key and `ce_correlationid` carry the correlation
//! id, and the value is the request, protobuf or in the protobuf JSON
//! mapping. [`CommandRequest`] decodes and encodes those values,
//! [`Command`] is a request validated and ready to execute.
//!
//! Every command gets one response on the Async Responses topic:
//! [`response_event`] builds it from what was recorded (so a re-published
//! response is byte-identical), [`ReceivedResponse`] parses and checks it on
//! the consumer side.

mod command;
mod json_event;
mod response;

pub use command::{
    CREATE_DATABASE, Command, CommandRequest, ContentKind, DELETE_DATABASE, TRANSACT, content_kind,
    fingerprint_of_bytes,
};
pub use json_event::{cloudevent_from_json, is_json};
pub use response::{
    FAILED, ReceivedResponse, ResponseError, ResponseParts, SUCCEEDED, error_response,
    response_event, response_source,
};
