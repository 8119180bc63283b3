use aws_lambda_events::kafka::KafkaRecord;
use base64::{Engine, engine::general_purpose::STANDARD};
use cloudevents::Event;

use crate::{DecodeError, decode};

/// A Lambda Kafka event record with key and value base64-decoded and headers
/// turned back into bytes (Lambda delivers them as signed bytes, each header
/// as a one-entry map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaRecordParts {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl LambdaRecordParts {
    /// Decodes key and value; the error names `key` or `value`.
    ///
    /// Kept apart from [`LambdaRecordParts::event`] so that a handler can
    /// still read the key (e.g. a correlation id) when the event is invalid.
    pub fn from_record(record: &KafkaRecord) -> Result<Self, DecodeError> {
        Ok(LambdaRecordParts {
            key: Self::base64_field("key", &record.key)?,
            value: Self::base64_field("value", &record.value)?,
            headers: Self::headers_of(record),
        })
    }

    /// One base64 field of a record (`key` or `value`) on its own: a
    /// handler that answers every record reads the key even when the value
    /// is not base64.
    pub fn base64_field(
        field: &'static str,
        value: &Option<String>,
    ) -> Result<Option<Vec<u8>>, DecodeError> {
        value
            .as_deref()
            .map(|s| {
                STANDARD
                    .decode(s)
                    .map_err(|_| DecodeError::BadBase64 { field })
            })
            .transpose()
    }

    /// The record's headers as bytes, in order: they never fail to decode,
    /// so a handler can read them even when key or value is not base64.
    pub fn headers_of(record: &KafkaRecord) -> Vec<(String, Vec<u8>)> {
        record
            .headers
            .iter()
            .flat_map(|h| h.iter())
            .map(|(k, v)| (k.clone(), v.iter().map(|b| *b as u8).collect()))
            .collect()
    }

    /// The first value of a header, if present (raw bytes).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Decodes the record as a CloudEvent in binary content mode.
    pub fn event(&self) -> Result<Event, DecodeError> {
        decode(
            self.headers
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_slice()))),
            self.value.as_deref(),
        )
    }
}

/// Decodes a Lambda Kafka record: its key (if any) and its CloudEvent.
pub fn decode_lambda_record(record: &KafkaRecord) -> Result<(Option<Vec<u8>>, Event), DecodeError> {
    let parts = LambdaRecordParts::from_record(record)?;
    let event = parts.event()?;
    Ok((parts.key, event))
}
