//! A Lambda Kafka record read as a command, whatever state it arrives in.
//!
//! Reading never fails: anything wrong with the record becomes the error
//! the command is answered with, and the record still yields a correlation
//! id to answer under (its `ce_correlationid`, else its key, else its
//! coordinates `{topic}-{partition}-{offset}`).

use aws_lambda_events::kafka::KafkaRecord;
use evidentsource_cloudevents_kafka::{
    AttributesReader, Data, LambdaRecordParts, TraceContext, decode,
};
use evidentsource_commands::{Command, CommandRequest, fingerprint_of_bytes};
use evidentsource_domain::{Error, Limits};

/// Longest correlation id accepted, in bytes (it becomes part of a DynamoDB
/// key and a Kafka key).
pub const MAX_CORRELATION_ID_BYTES: usize = 256;

/// A command record as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// `{topic}-{partition}-{offset}`.
    pub coordinates: String,
    /// What the response is keyed and recorded by.
    pub correlation_id: String,
    /// Whether the record carried no usable correlation id (the coordinates
    /// stand in).
    pub anonymous: bool,
    /// Identifies the command's content (see [`CommandRequest::fingerprint`]).
    pub fingerprint: Vec<u8>,
    /// The database the command names, if it is a valid name.
    pub subject: Option<String>,
    /// The Kafka record's timestamp, milliseconds.
    pub timestamp: i64,
    /// The producer's trace context (`ce_traceparent`, `ce_tracestate`),
    /// read even when the rest of the record is not a valid command; a
    /// malformed one is ignored.
    pub trace: Option<TraceContext>,
    pub command: Result<Command, Error>,
}

impl Incoming {
    /// Reads a record of `topic` (the record's own topic field wins).
    pub fn read(topic: &str, record: &KafkaRecord, limits: &Limits) -> Incoming {
        let topic = record.topic.as_deref().unwrap_or(topic);
        let coordinates = format!("{topic}-{}-{}", record.partition, record.offset);
        let headers = LambdaRecordParts::headers_of(record);
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_slice())
        };
        let text = |name: &str| header(name).and_then(|v| std::str::from_utf8(v).ok());
        let trace =
            text("ce_traceparent").and_then(|t| TraceContext::parse(t, text("ce_tracestate")));
        let key = b64("key", &record.key);
        let value = b64("value", &record.value);

        let (correlation_id, id_problem) = correlation_id(header("ce_correlationid"), &key);
        let anonymous = correlation_id.is_none();
        if anonymous {
            tracing::warn!(
                coordinates,
                "command without a correlation id: its error response is keyed by its coordinates"
            );
        }
        let correlation_id = correlation_id.unwrap_or_else(|| coordinates.clone());

        let request = (|| {
            let value = value.clone()?;
            let event = decode(
                headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), Some(v.as_slice()))),
                value.as_deref(),
            )
            .map_err(|e| {
                let field = e.header().to_owned();
                let message = e.to_string();
                let prefix = format!("header {field}: ");
                let message = message.strip_prefix(&prefix).unwrap_or(&message);
                Error::invalid_argument(&field, message)
            })?;
            let data = match event.data() {
                Some(Data::Binary(b)) => b.as_slice(),
                Some(Data::String(s)) => s.as_bytes(),
                Some(Data::Json(_)) | None => &[],
            };
            CommandRequest::decode(event.ty(), event.datacontenttype(), data)
        })();

        let fingerprint = match &request {
            Ok(request) => request.fingerprint(),
            Err(_) => raw_fingerprint(&headers, &record.value),
        };
        let subject = request
            .as_ref()
            .ok()
            .map(|r| r.database_name())
            .filter(|n| evidentsource_domain::validate_name("database_name", n).is_ok())
            .map(str::to_owned);
        let command = match id_problem {
            Some(problem) => Err(problem),
            None => request.and_then(|r| Command::from_request(r, limits)),
        };
        Incoming {
            coordinates,
            correlation_id,
            anonymous,
            fingerprint,
            subject,
            timestamp: record.timestamp.0.timestamp_millis(),
            trace,
            command,
        }
    }
}

fn b64(field: &'static str, v: &Option<String>) -> Result<Option<Vec<u8>>, Error> {
    LambdaRecordParts::base64_field(field, v)
        .map_err(|_| Error::invalid_argument(field, "is not valid base64"))
}

/// The correlation id (header, else key), and the problem with the record's
/// ids if any. An unusable header or key is not used.
fn correlation_id(
    header: Option<&[u8]>,
    key: &Result<Option<Vec<u8>>, Error>,
) -> (Option<String>, Option<Error>) {
    let header = header.map(|h| usable("ce_correlationid", h));
    let key = match key {
        Ok(Some(k)) => Some(usable("key", k)),
        Ok(None) => None,
        Err(e) => Some(Err(e.clone())),
    };
    match (header, key) {
        (Some(Ok(h)), Some(Ok(k))) if h != k => {
            let problem = Error::invalid_argument(
                "key",
                format!(
                    "{k:?} differs from ce_correlationid {h:?}; both must be the correlation id"
                ),
            );
            (Some(h), Some(problem))
        }
        (Some(Ok(h)), Some(Err(problem))) => (Some(h), Some(problem)),
        (Some(Ok(h)), _) => (Some(h), None),
        (Some(Err(problem)), Some(Ok(k))) => (Some(k), Some(problem)),
        (Some(Err(problem)), _) => (None, Some(problem)),
        (None, Some(Ok(k))) => (Some(k), None),
        (None, Some(Err(problem))) => (None, Some(problem)),
        (None, None) => (
            None,
            Some(Error::invalid_argument(
                "ce_correlationid",
                "is required (the header, and the same id as the key)",
            )),
        ),
    }
}

fn usable(field: &str, bytes: &[u8]) -> Result<String, Error> {
    let id = std::str::from_utf8(bytes)
        .map_err(|_| Error::invalid_argument(field, "is not UTF-8"))?
        .to_owned();
    if id.is_empty() {
        return Err(Error::invalid_argument(field, "is empty"));
    }
    if id.len() > MAX_CORRELATION_ID_BYTES {
        return Err(Error::invalid_argument(
            field,
            format!("is longer than {MAX_CORRELATION_ID_BYTES} bytes"),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(Error::invalid_argument(
            field,
            "must not contain control characters",
        ));
    }
    Ok(id)
}

/// Headers a producer regenerates when it re-sends the same command (a
/// retry may well run in a new trace).
const VOLATILE_HEADERS: [&str; 4] = ["ce_id", "ce_time", "ce_traceparent", "ce_tracestate"];

/// The fingerprint of a record that is not a valid request: its headers
/// (but those a re-send regenerates) and raw value, so a re-delivery or a
/// re-send matches and anything else does not.
fn raw_fingerprint(headers: &[(String, Vec<u8>)], value: &Option<String>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (k, v) in headers
        .iter()
        .filter(|(k, _)| !VOLATILE_HEADERS.contains(&k.as_str()))
    {
        for part in [k.as_bytes(), v.as_slice()] {
            bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
            bytes.extend_from_slice(part);
        }
    }
    fingerprint_of_bytes(
        b"undecodable",
        &[bytes, value.as_deref().unwrap_or("").as_bytes().to_vec()].concat(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_correlation_id_comes_from_the_header_else_the_key() {
        let long = "x".repeat(MAX_CORRELATION_ID_BYTES + 1);
        let not_base64: Result<Option<Vec<u8>>, Error> =
            Err(Error::invalid_argument("key", "is not valid base64"));
        let key = |k: &str| -> Result<Option<Vec<u8>>, Error> { Ok(Some(k.as_bytes().to_vec())) };
        // (ce_correlationid, key, id answered under, the problem's field
        // and words)
        type Row<'a> = (
            Option<&'a [u8]>,
            Result<Option<Vec<u8>>, Error>,
            Option<&'a str>,
            Option<(&'a str, &'a str)>,
        );
        let table: Vec<Row> = vec![
            (Some(b"c1"), key("c1"), Some("c1"), None),
            (Some(b"c1"), Ok(None), Some("c1"), None),
            (None, key("k1"), Some("k1"), None),
            // Both, and they differ: the header wins, the key is wrong.
            (
                Some(b"c1"),
                key("k1"),
                Some("c1"),
                Some(("key", "differs from ce_correlationid")),
            ),
            // A usable header with an unusable key.
            (Some(b"c1"), key(""), Some("c1"), Some(("key", "is empty"))),
            (
                Some(b"c1"),
                not_base64.clone(),
                Some("c1"),
                Some(("key", "not valid base64")),
            ),
            // An unusable header: the key stands in when usable.
            (
                Some(b"\xff"),
                key("k1"),
                Some("k1"),
                Some(("ce_correlationid", "is not UTF-8")),
            ),
            (
                Some(long.as_bytes()),
                Ok(None),
                None,
                Some(("ce_correlationid", "is longer than 256 bytes")),
            ),
            (
                Some(b"a\nb"),
                key("\u{7}"),
                None,
                Some(("ce_correlationid", "control characters")),
            ),
            (None, key(&long), None, Some(("key", "is longer than"))),
            (None, not_base64, None, Some(("key", "not valid base64"))),
            (
                None,
                Ok(None),
                None,
                Some(("ce_correlationid", "is required")),
            ),
        ];
        for (header, key, id, problem) in table {
            let (got_id, got_problem) = correlation_id(header, &key);
            let what = format!("{header:?} {key:?}");
            assert_eq!(got_id.as_deref(), id, "{what}");
            match (got_problem, problem) {
                (None, None) => {}
                (Some(e), Some((field, words))) => {
                    assert_eq!(e.field.as_deref(), Some(field), "{what}: {e:?}");
                    assert!(e.message.contains(words), "{what}: {e:?}");
                }
                (got, expected) => panic!("{what}: {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn a_fingerprint_ignores_what_a_resend_regenerates() {
        let headers = |id: &str, ty: &str| {
            vec![
                ("ce_id".to_owned(), id.as_bytes().to_vec()),
                ("ce_time".to_owned(), id.as_bytes().to_vec()),
                ("ce_traceparent".to_owned(), id.as_bytes().to_vec()),
                ("ce_tracestate".to_owned(), id.as_bytes().to_vec()),
                ("ce_type".to_owned(), ty.as_bytes().to_vec()),
            ]
        };
        let value = Some("AAEC".to_owned());
        let base = raw_fingerprint(&headers("1", "t"), &value);
        // (headers, value, same fingerprint)
        let table = [
            (headers("2", "t"), value.clone(), true),
            (headers("1", "u"), value.clone(), false),
            (headers("1", "t"), Some("AAED".to_owned()), false),
            (headers("1", "t"), None, false),
        ];
        for (h, v, same) in table {
            assert_eq!(raw_fingerprint(&h, &v) == base, same, "{h:?} {v:?}");
        }
    }
}
