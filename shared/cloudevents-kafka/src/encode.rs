use chrono::SecondsFormat;
use cloudevents::{AttributesReader, Data, Event, event::ExtensionValue};
use rdkafka::message::{Header, OwnedHeaders};

use crate::{CONTENT_TYPE, ext};

/// A CloudEvent in binary content mode: headers in a fixed order, and the
/// value. The key is the caller's business (database name, correlation id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryMessage {
    pub headers: Vec<(String, Vec<u8>)>,
    pub value: Vec<u8>,
}

impl BinaryMessage {
    /// The headers as rdkafka wants them for a `FutureRecord`/`BaseRecord`.
    pub fn owned_headers(&self) -> OwnedHeaders {
        self.headers.iter().fold(
            OwnedHeaders::new_with_capacity(self.headers.len()),
            |headers, (key, value)| {
                headers.insert(Header {
                    key,
                    value: Some(value),
                })
            },
        )
    }

    /// The value of a header, if present.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Encodes `event` in binary content mode.
///
/// Header order: `ce_specversion`, `ce_id`, `ce_source`, `ce_type`,
/// `ce_time`, `ce_datacontenttype`, `content-type`, `ce_dataschema`,
/// `ce_subject`, then `ce_revision`, `ce_basis`, `ce_correlationid` and any
/// other extension by name. `ce_time` is RFC 3339 in UTC with millisecond
/// precision (finer precision is truncated). Data is written as is: binary
/// bytes, string bytes, or serialized JSON.
pub fn encode(event: &Event) -> BinaryMessage {
    let mut headers: Vec<(String, Vec<u8>)> = Vec::with_capacity(12);
    let mut put =
        |name: &str, value: &str| headers.push((name.to_owned(), value.as_bytes().to_vec()));

    put("ce_specversion", event.specversion().as_str());
    put("ce_id", event.id());
    put("ce_source", event.source());
    put("ce_type", event.ty());
    if let Some(time) = event.time() {
        put(
            "ce_time",
            &time.to_rfc3339_opts(SecondsFormat::Millis, true),
        );
    }
    if let Some(ct) = event.datacontenttype() {
        put("ce_datacontenttype", ct);
        put(CONTENT_TYPE, ct);
    }
    if let Some(schema) = event.dataschema() {
        put("ce_dataschema", schema.as_str());
    }
    if let Some(subject) = event.subject() {
        put("ce_subject", subject);
    }

    let mut extensions: Vec<(&str, &ExtensionValue)> = event.iter_extensions().collect();
    // HashMap order is random: sort so that retries are byte-identical.
    extensions.sort_by_key(|(name, _)| {
        let rank = ext::ORDERED
            .iter()
            .position(|o| o == name)
            .unwrap_or(ext::ORDERED.len());
        (rank, *name)
    });
    for (name, value) in extensions {
        let value = match value {
            ExtensionValue::String(s) => s.clone(),
            ExtensionValue::Boolean(b) => b.to_string(),
            ExtensionValue::Integer(i) => i.to_string(),
        };
        put(&format!("ce_{name}"), &value);
    }

    let value = match event.data() {
        None => Vec::new(),
        Some(Data::Binary(bytes)) => bytes.clone(),
        Some(Data::String(s)) => s.as_bytes().to_vec(),
        // Serializing a Value cannot fail (keys are strings).
        Some(Data::Json(json)) => serde_json::to_vec(json).unwrap_or_default(),
    };
    BinaryMessage { headers, value }
}
