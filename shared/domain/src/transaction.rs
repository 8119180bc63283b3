use std::collections::HashSet;

use evidentsource_proto::{
    TransactRequest,
    cloudevents::{
        CloudEvent,
        cloud_event::{Data, cloud_event_attribute_value::Attr},
    },
};

use crate::{
    AppendCondition, DatabaseName, Error, EventFacts, SelectorLimits, quote, stream_of_source,
};

/// Size and count limits of one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Events per transaction.
    pub max_events: usize,
    /// Sum of the events' data sizes.
    pub max_data_bytes: usize,
    /// Encoded size of one event (attributes and data), so that an event
    /// always fits in one stored chunk.
    pub max_event_bytes: usize,
    pub max_conditions: usize,
    pub max_transaction_id_len: usize,
    pub selectors: SelectorLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_events: 1000,
            max_data_bytes: 1024 * 1024,
            max_event_bytes: 256 * 1024,
            max_conditions: 32,
            max_transaction_id_len: 128,
            selectors: SelectorLimits::default(),
        }
    }
}

/// What conditions look at in a stored event, owned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnedFacts {
    pub stream: String,
    pub subject: Option<String>,
    pub event_type: String,
}

impl OwnedFacts {
    pub fn as_facts(&self) -> EventFacts<'_> {
        EventFacts {
            stream: &self.stream,
            subject: self.subject.as_deref(),
            event_type: &self.event_type,
        }
    }

    /// The facts of an event already validated (stored events). An event
    /// whose source has no valid stream yields `None`.
    pub fn of(event: &CloudEvent) -> Option<OwnedFacts> {
        Some(OwnedFacts {
            stream: stream_of_source(&event.source).ok()?.into_string(),
            subject: subject_of(event).map(str::to_owned),
            event_type: event.r#type.clone(),
        })
    }
}

/// A validated transaction: every event well-formed with its stream, the
/// conditions parsed, the limits respected.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    pub database: DatabaseName,
    pub events: Vec<CloudEvent>,
    /// `facts[i]` belongs to `events[i]`.
    pub facts: Vec<OwnedFacts>,
    pub conditions: Vec<AppendCondition>,
    /// The caller's idempotency key, if given.
    pub transaction_id: Option<String>,
}

/// Reserved attribute names: the CloudEvent's own fields, and the
/// extensions the suite adds when it returns stored events.
const RESERVED: [&str; 8] = [
    "id",
    "source",
    "specversion",
    "type",
    "data",
    "data_base64",
    "revision",
    "basis",
];

impl Transaction {
    /// Validates a transact request. Field names in errors follow the
    /// request: `database_name`, `events[3].source`, `conditions[0].max`, ...
    pub fn from_request(request: TransactRequest, limits: &Limits) -> Result<Self, Error> {
        let database = DatabaseName::parse_field("database_name", request.database_name)?;
        let transaction_id = match request.transaction_id {
            id if id.is_empty() => None,
            id if id.len() > limits.max_transaction_id_len => {
                return Err(Error::invalid_argument(
                    "transaction_id",
                    format!("is longer than {} bytes", limits.max_transaction_id_len),
                ));
            }
            id if id.chars().any(char::is_control) => {
                return Err(Error::invalid_argument(
                    "transaction_id",
                    "must not contain control characters",
                ));
            }
            id => Some(id),
        };
        if request.events.is_empty() {
            return Err(Error::invalid_argument(
                "events",
                "a transaction needs at least one event",
            ));
        }
        if request.events.len() > limits.max_events {
            return Err(Error::invalid_argument(
                "events",
                format!(
                    "{} events exceed the limit of {} events per transaction",
                    request.events.len(),
                    limits.max_events
                ),
            ));
        }
        if request.conditions.len() > limits.max_conditions {
            return Err(Error::invalid_argument(
                "conditions",
                format!(
                    "{} conditions exceed the limit of {} per transaction",
                    request.conditions.len(),
                    limits.max_conditions
                ),
            ));
        }
        let conditions = request
            .conditions
            .iter()
            .enumerate()
            .map(|(i, c)| {
                AppendCondition::from_proto(&format!("conditions[{i}]"), c, limits.selectors)
            })
            .collect::<Result<Vec<_>, _>>()?;

        let mut facts = Vec::with_capacity(request.events.len());
        let mut data_bytes = 0usize;
        let mut ids = HashSet::with_capacity(request.events.len());
        for (i, event) in request.events.iter().enumerate() {
            let f = validate_event(event, limits).map_err(|e| e.within(&format!("events[{i}]")))?;
            data_bytes += data_len(event);
            if data_bytes > limits.max_data_bytes {
                return Err(Error::invalid_argument(
                    "events",
                    format!(
                        "event data exceeds the limit of {} bytes per transaction (at events[{i}])",
                        limits.max_data_bytes
                    ),
                ));
            }
            if !ids.insert((f.stream.clone(), event.id.clone())) {
                return Err(Error::invalid_argument(
                    format!("events[{i}].id"),
                    format!(
                        "{} appears twice in stream {}",
                        quote(&event.id),
                        quote(f.stream.as_str())
                    ),
                ));
            }
            facts.push(f);
        }
        Ok(Transaction {
            database,
            events: request.events,
            facts,
            conditions,
            transaction_id,
        })
    }

    /// The request this transaction was validated from (e.g. to pass it on
    /// as an async command).
    pub fn to_request(&self) -> TransactRequest {
        TransactRequest {
            database_name: self.database.to_string(),
            events: self.events.clone(),
            conditions: self
                .conditions
                .iter()
                .map(AppendCondition::to_proto)
                .collect(),
            transaction_id: self.transaction_id.clone().unwrap_or_default(),
        }
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

fn validate_event(event: &CloudEvent, limits: &Limits) -> Result<OwnedFacts, Error> {
    if event.id.is_empty() {
        return Err(Error::invalid_argument("id", "is required"));
    }
    if event.spec_version != "1.0" {
        return Err(Error::invalid_argument(
            "specversion",
            format!(
                "{} is not supported (only \"1.0\")",
                quote(&event.spec_version)
            ),
        ));
    }
    if event.r#type.is_empty() {
        return Err(Error::invalid_argument("type", "is required"));
    }
    let stream = stream_of_source(&event.source)?;
    for (name, value) in &event.attributes {
        let field = || name.clone();
        if name.is_empty()
            || name.len() > 20
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(Error::invalid_argument(
                field(),
                "attribute names are 1 to 20 lowercase letters and digits",
            ));
        }
        if RESERVED.contains(&name.as_str()) {
            return Err(Error::invalid_argument(
                field(),
                "is a reserved attribute name",
            ));
        }
        let attr = value.attr.as_ref();
        let ok = match name.as_str() {
            "subject" | "datacontenttype" => matches!(attr, Some(Attr::CeString(_))),
            "time" => matches!(attr, Some(Attr::CeTimestamp(_))),
            "dataschema" => matches!(attr, Some(Attr::CeUri(_) | Attr::CeString(_))),
            _ => attr.is_some(),
        };
        if !ok {
            return Err(Error::invalid_argument(
                field(),
                "has the wrong type or no value",
            ));
        }
        match attr {
            Some(Attr::CeTimestamp(t)) => check_time(t).map_err(|e| e.within(&field()))?,
            Some(Attr::CeUri(uri) | Attr::CeString(uri)) if name == "dataschema" => {
                check_uri(uri).map_err(|e| e.within(&field()))?
            }
            _ => {}
        }
    }
    if let Some(Data::ProtoData(_)) = &event.data {
        // Stored events keep bytes and text; an Any's type URL would be
        // lost on the way back out, so it is refused rather than dropped.
        return Err(Error::invalid_argument(
            "proto_data",
            "is not supported: send the message as binary_data, with datacontenttype \
             application/protobuf and its type in dataschema",
        ));
    }
    let size = evidentsource_proto::Message::encoded_len(event);
    if size > limits.max_event_bytes {
        // An empty field: `within` names the event itself.
        return Err(Error::invalid_argument(
            "",
            format!(
                "is {size} bytes encoded; the limit per event is {}",
                limits.max_event_bytes
            ),
        ));
    }
    Ok(OwnedFacts {
        stream: stream.into_string(),
        subject: subject_of(event).map(str::to_owned),
        event_type: event.r#type.clone(),
    })
}

/// RFC 3339 (and protobuf's `Timestamp`) cover 0001-01-01T00:00:00Z to
/// 9999-12-31T23:59:59.999999999Z; a time outside cannot be written back.
fn check_time(t: &evidentsource_proto::Timestamp) -> Result<(), Error> {
    const MIN_SECONDS: i64 = -62_135_596_800;
    const MAX_SECONDS: i64 = 253_402_300_799;
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&t.seconds) {
        return Err(Error::invalid_argument(
            "",
            format!(
                "{} seconds is outside RFC 3339's years 0001 to 9999",
                t.seconds
            ),
        ));
    }
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(Error::invalid_argument(
            "",
            format!("{} nanoseconds is not within a second", t.nanos),
        ));
    }
    Ok(())
}

/// An absolute URI (RFC 3986): a scheme, then no whitespace or controls.
fn check_uri(uri: &str) -> Result<(), Error> {
    let scheme_end = uri.find(':').unwrap_or(0);
    let scheme = &uri[..scheme_end];
    let valid_scheme = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme
        || uri.len() == scheme_end + 1
        || uri.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid_argument(
            "",
            format!("{} is not an absolute URI", quote(uri)),
        ));
    }
    Ok(())
}

/// The event's subject attribute, if it is a string.
pub fn subject_of(event: &CloudEvent) -> Option<&str> {
    match event
        .attributes
        .get("subject")
        .and_then(|v| v.attr.as_ref())
    {
        Some(Attr::CeString(s)) => Some(s),
        _ => None,
    }
}

/// Size of the event's data in bytes.
pub fn data_len(event: &CloudEvent) -> usize {
    match &event.data {
        None => 0,
        Some(Data::BinaryData(b)) => b.len(),
        Some(Data::TextData(t)) => t.len(),
        Some(Data::ProtoData(any)) => any.value.len(),
    }
}

#[cfg(test)]
mod tests;
