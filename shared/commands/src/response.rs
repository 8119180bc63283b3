use chrono::{DateTime, TimeZone, Utc};
use evidentsource_cloudevents_kafka::{
    AttributesReader, AttributesWriter, Data, Event, EventBuilder, EventBuilderV10, TraceContext,
    ext,
};
use evidentsource_domain::Error;
use evidentsource_proto::{CommandError, CommandResponse, ErrorCode, Message, command_response};
use uuid::Uuid;

/// `ce_type` of a response with a result.
pub const SUCCEEDED: &str = "com.evidentsource.command.succeeded.v1";
/// `ce_type` of a response with an error.
pub const FAILED: &str = "com.evidentsource.command.failed.v1";

const PROTOBUF: &str = "application/protobuf";

/// Namespace of the name-based (v5) UUIDs used as a response's `ce_id`.
const ID_NAMESPACE: Uuid = uuid::uuid!("5e0f3c1a-7d2b-4c55-8f0e-2b9d6a4c7e13");

/// `{base_uri}/async-commands`: the `ce_source` of every response.
pub fn response_source(base_uri: &str) -> String {
    format!("{}/async-commands", base_uri.trim_end_matches('/'))
}

/// A response for an error: its code and message (which starts with the
/// field at fault, if any).
pub fn error_response(error: &Error) -> CommandResponse {
    CommandResponse {
        result: Some(command_response::Result::Error(CommandError {
            code: ErrorCode::from(error.code) as i32,
            message: error.message.clone(),
        })),
    }
}

/// Everything a response message is built from. All of it is recorded, so
/// building the message again gives the same bytes.
#[derive(Debug, Clone, Copy)]
pub struct ResponseParts<'a> {
    pub correlation_id: &'a str,
    /// The command's fingerprint: with the correlation id, it names the
    /// response (`ce_id`).
    pub fingerprint: &'a [u8],
    /// `ce_source` (see [`response_source`]).
    pub source: &'a str,
    /// Milliseconds since the epoch (`ce_time`).
    pub recorded_at: i64,
    /// The database (`ce_subject`), when the command named a valid one.
    pub subject: Option<&'a str>,
    /// The encoded `CommandResponse`.
    pub response: &'a [u8],
    /// `ce_traceparent` and `ce_tracestate`, as recorded (a malformed
    /// recorded value is left off rather than sent).
    pub traceparent: Option<&'a str>,
    pub tracestate: Option<&'a str>,
}

/// The response message; its key is the correlation id. Fails only if the
/// recorded response does not decode.
pub fn response_event(parts: &ResponseParts<'_>) -> Result<Event, prost::DecodeError> {
    let response = CommandResponse::decode(parts.response)?;
    let ce_type = match response.result {
        Some(command_response::Result::Error(_)) | None => FAILED,
        Some(_) => SUCCEEDED,
    };
    let id = Uuid::new_v5(
        &ID_NAMESPACE,
        format!(
            "{}\n{}",
            parts.correlation_id,
            hex::encode(parts.fingerprint)
        )
        .as_bytes(),
    );
    let time = Utc
        .timestamp_millis_opt(parts.recorded_at)
        .single()
        .unwrap_or_default();
    let mut event = EventBuilderV10::new()
        .id(id.to_string())
        .source(parts.source)
        .ty(ce_type)
        .time(time)
        .build()
        .unwrap_or_default();
    event.set_subject(parts.subject.map(str::to_owned));
    ext::set_correlation_id(&mut event, parts.correlation_id);
    if let Some(trace) = parts
        .traceparent
        .and_then(|t| TraceContext::parse(t, parts.tracestate))
    {
        trace.set_on(&mut event);
    }
    event.set_data(PROTOBUF, Data::Binary(parts.response.to_vec()));
    Ok(event)
}

/// Why a message on the responses topic breaks the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("ce_type {0:?} is not a response type")]
    Type(String),
    #[error("ce_correlationid is missing")]
    NoCorrelationId,
    #[error("the key {key:?} differs from ce_correlationid {header:?}")]
    KeyMismatch { key: String, header: String },
    #[error("the value is not a CommandResponse: {0}")]
    Value(String),
    #[error("ce_type {ce_type} does not fit a response with {has}")]
    Inconsistent { ce_type: String, has: &'static str },
}

/// A response as a consumer reads it, checked against the contract.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedResponse {
    pub correlation_id: String,
    pub id: String,
    pub subject: Option<String>,
    pub time: Option<DateTime<Utc>>,
    pub response: CommandResponse,
    /// The trace the command's execution continued, if any.
    pub trace: Option<TraceContext>,
}

impl ReceivedResponse {
    pub fn parse(key: Option<&[u8]>, event: &Event) -> Result<Self, ResponseError> {
        let correlation_id = ext::correlation_id(event)
            .ok_or(ResponseError::NoCorrelationId)?
            .to_owned();
        let key = key.map(|k| String::from_utf8_lossy(k).into_owned());
        if key.as_deref() != Some(correlation_id.as_str()) {
            return Err(ResponseError::KeyMismatch {
                key: key.unwrap_or_default(),
                header: correlation_id,
            });
        }
        let value = match event.data() {
            Some(Data::Binary(b)) => b.as_slice(),
            Some(Data::String(s)) => s.as_bytes(),
            _ => &[],
        };
        let response =
            CommandResponse::decode(value).map_err(|e| ResponseError::Value(e.to_string()))?;
        let has = match response.result {
            Some(command_response::Result::Database(_)) => "a database",
            Some(command_response::Result::BatchSummary(_)) => "a batch summary",
            Some(command_response::Result::Error(_)) => "an error",
            None => "no result",
        };
        let fits = match event.ty() {
            SUCCEEDED => matches!(has, "a database" | "a batch summary"),
            FAILED => has == "an error",
            other => return Err(ResponseError::Type(other.to_owned())),
        };
        if !fits {
            return Err(ResponseError::Inconsistent {
                ce_type: event.ty().to_owned(),
                has,
            });
        }
        Ok(ReceivedResponse {
            correlation_id,
            id: event.id().to_owned(),
            subject: event.subject().map(str::to_owned),
            time: event.time().copied(),
            response,
            trace: TraceContext::of_event(event),
        })
    }

    /// The error code and message, for a failed command.
    pub fn error(&self) -> Option<(ErrorCode, &str)> {
        match &self.response.result {
            Some(command_response::Result::Error(e)) => Some((
                ErrorCode::try_from(e.code).unwrap_or(ErrorCode::Unspecified),
                e.message.as_str(),
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use evidentsource_cloudevents_kafka::{decode, encode};
    use evidentsource_proto::Database;

    use super::*;

    fn parts<'a>(response: &'a [u8], subject: Option<&'a str>) -> ResponseParts<'a> {
        ResponseParts {
            correlation_id: "c-1",
            fingerprint: &[1, 2, 3],
            source: "https://x/async-commands",
            recorded_at: 1_705_314_600_123,
            subject,
            response,
            traceparent: None,
            tracestate: None,
        }
    }

    #[test]
    fn builds_the_same_bytes_every_time_and_parses_back() {
        let ok = CommandResponse {
            result: Some(command_response::Result::Database(Database {
                name: "orders".into(),
                ..Default::default()
            })),
        }
        .encode_to_vec();
        let event = response_event(&parts(&ok, Some("orders"))).unwrap();
        assert_eq!(response_source("https://x/"), "https://x/async-commands");
        let first = encode(&event);
        let again = encode(&response_event(&parts(&ok, Some("orders"))).unwrap());
        assert_eq!(first, again);
        let header = |name: &str| {
            first
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(header("ce_type").as_deref(), Some(SUCCEEDED));
        assert_eq!(header("ce_subject").as_deref(), Some("orders"));
        assert_eq!(header("ce_correlationid").as_deref(), Some("c-1"));
        assert_eq!(
            header("ce_time").as_deref(),
            Some("2024-01-15T10:30:00.123Z")
        );
        assert_eq!(
            header("ce_source").as_deref(),
            Some("https://x/async-commands")
        );

        let back = decode(
            first
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_slice()))),
            Some(&first.value),
        )
        .unwrap();
        let received = ReceivedResponse::parse(Some(b"c-1"), &back).unwrap();
        assert_eq!(received.subject.as_deref(), Some("orders"));
        assert_eq!(received.error(), None);
        assert_eq!(
            ReceivedResponse::parse(Some(b"other"), &back).unwrap_err(),
            ResponseError::KeyMismatch {
                key: "other".into(),
                header: "c-1".into()
            }
        );
    }

    #[test]
    fn a_recorded_trace_context_is_on_the_response() {
        const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ok = error_response(&Error::invalid_argument("name", "is required")).encode_to_vec();
        // (traceparent, tracestate, headers expected)
        let cases = [
            (
                Some(PARENT),
                Some("k=v"),
                vec![("ce_traceparent", PARENT), ("ce_tracestate", "k=v")],
            ),
            (Some(PARENT), None, vec![("ce_traceparent", PARENT)]),
            (Some("not-a-traceparent"), Some("k=v"), vec![]),
            (None, Some("k=v"), vec![]),
        ];
        for (traceparent, tracestate, expected) in cases {
            let mut recorded = parts(&ok, None);
            recorded.traceparent = traceparent;
            recorded.tracestate = tracestate;
            let message = encode(&response_event(&recorded).unwrap());
            let trace: Vec<(&str, &str)> = message
                .headers
                .iter()
                .filter(|(k, _)| k.starts_with("ce_trace"))
                .map(|(k, v)| (k.as_str(), std::str::from_utf8(v).unwrap()))
                .collect();
            assert_eq!(trace, expected, "{traceparent:?} {tracestate:?}");
            let back = decode(
                message
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), Some(v.as_slice()))),
                Some(&message.value),
            )
            .unwrap();
            let received = ReceivedResponse::parse(Some(b"c-1"), &back).unwrap();
            assert_eq!(
                received.trace.map(|t| t.to_string()).as_deref(),
                expected.first().map(|(_, v)| *v)
            );
        }
    }

    #[test]
    fn errors_are_failed_responses_naming_the_field() {
        let error = Error::invalid_argument("events[0].source", "is required");
        let bytes = error_response(&error).encode_to_vec();
        let event = response_event(&parts(&bytes, None)).unwrap();
        assert_eq!(event.ty(), FAILED);
        assert_eq!(event.subject(), None);
        let received = ReceivedResponse::parse(Some(b"c-1"), &event).unwrap();
        assert_eq!(
            received.error(),
            Some((ErrorCode::InvalidArgument, "events[0].source: is required"))
        );
    }
}
