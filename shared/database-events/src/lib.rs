//! The messages of the Database Events topic.
//!
//! [`DatabaseEvent`] is what the publisher sends: it becomes a CloudEvent with
//! the headers of the contract and a deterministic `ce_id`, so that a retry
//! re-sends a byte-identical message. [`ReceivedDatabaseEvent`] is what a
//! consumer reads back, checked for internal consistency (key, headers and
//! body agree); [`SequenceTracker`] checks the order between them, and
//! [`describe`] prints one.

mod describe;
mod sequence;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
pub use describe::describe;
use evidentsource_cloudevents_kafka::{
    AttributesReader, AttributesWriter, BinaryMessage, CONTENT_TYPE, Data, Event, ext,
};
use evidentsource_proto::{BatchSummary, Database, Message, Timestamp};
pub use sequence::{DEFAULT_DUPLICATE_WINDOW, SequenceProblem, SequenceTracker};
use uuid::Uuid;

pub const CREATED: &str = "com.evidentsource.database.created.v1";
pub const TRANSACTED: &str = "com.evidentsource.batch.transacted.v1";
pub const DELETED: &str = "com.evidentsource.database.deleted.v1";

pub const PROTOBUF: &str = "application/protobuf";
pub const OCTET_STREAM: &str = "application/octet-stream";

/// Namespace of the name-based (v5) UUIDs used as `ce_id`.
const ID_NAMESPACE: Uuid = uuid::uuid!("0c5bd5de-8f7b-4f54-9d5e-7a3c2f0e9b41");

/// A database-level change, as the publisher sends it.
#[derive(Debug, Clone, PartialEq)]
pub enum DatabaseEvent {
    Created(Database),
    Transacted(BatchSummary),
    Deleted {
        database: String,
        /// When the deleted incarnation was created: it tells apart the
        /// deletions of a database that was re-created in between.
        created_at: Timestamp,
        deleted_at: Timestamp,
    },
}

/// A database event ready for Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedDatabaseEvent {
    /// The database name (UTF-8): every event of a database lands on one partition.
    pub key: String,
    pub message: BinaryMessage,
}

impl DatabaseEvent {
    pub fn database(&self) -> &str {
        match self {
            DatabaseEvent::Created(d) => &d.name,
            DatabaseEvent::Transacted(b) => &b.database,
            DatabaseEvent::Deleted { database, .. } => database,
        }
    }

    pub fn event_type(&self) -> &'static str {
        match self {
            DatabaseEvent::Created(_) => CREATED,
            DatabaseEvent::Transacted(_) => TRANSACTED,
            DatabaseEvent::Deleted { .. } => DELETED,
        }
    }

    /// The `ce_id`: a v5 UUID of what identifies the event, so the same
    /// logical event always gets the same id.
    pub fn id(&self) -> Uuid {
        let name = match self {
            DatabaseEvent::Created(d) => format!("created\n{}\n{}", d.name, ts_key(&d.created_at)),
            DatabaseEvent::Transacted(b) => {
                format!("transacted\n{}\n{}\n{}", b.database, b.id, b.revision)
            }
            DatabaseEvent::Deleted {
                database,
                created_at,
                deleted_at,
            } => format!(
                "deleted\n{database}\n{}\n{}",
                ts_key(&Some(*created_at)),
                ts_key(&Some(*deleted_at))
            ),
        };
        Uuid::new_v5(&ID_NAMESPACE, name.as_bytes())
    }

    fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            DatabaseEvent::Created(d) => d.created_at.as_ref().and_then(to_datetime),
            DatabaseEvent::Transacted(b) => b.recorded_time.as_ref().and_then(to_datetime),
            DatabaseEvent::Deleted { deleted_at, .. } => to_datetime(deleted_at),
        }
    }

    /// The CloudEvent, with `ce_source` = `{base_uri}/db/{database}`.
    pub fn to_cloudevent(&self, base_uri: &str) -> Event {
        let mut e = Event::default();
        e.set_id(self.id().to_string());
        e.set_source(source(base_uri, self.database()));
        e.set_type(self.event_type());
        e.set_time(self.time());
        match self {
            DatabaseEvent::Created(d) => {
                ext::set_revision(&mut e, d.revision);
                ext::set_basis(&mut e, d.basis);
                e.set_data(PROTOBUF, Data::Binary(d.encode_to_vec()));
            }
            DatabaseEvent::Transacted(b) => {
                e.set_subject(Some(b.id.clone()));
                ext::set_revision(&mut e, b.revision);
                ext::set_basis(&mut e, b.basis);
                e.set_data(PROTOBUF, Data::Binary(b.encode_to_vec()));
            }
            DatabaseEvent::Deleted { .. } => {
                e.set_datacontenttype(Some(OCTET_STREAM));
            }
        }
        e
    }

    /// The message: key, headers and value. The same bytes as
    /// `encode(&self.to_cloudevent(base_uri))` (a test holds them equal), but
    /// written directly: this is the publisher's per-record path.
    pub fn encode(&self, base_uri: &str) -> EncodedDatabaseEvent {
        let mut headers = Vec::with_capacity(10);
        self.write_headers(base_uri, |name, value| {
            headers.push((name.to_owned(), value.to_vec()))
        });
        EncodedDatabaseEvent {
            key: self.database().to_owned(),
            message: BinaryMessage {
                headers,
                value: self.value(),
            },
        }
    }

    /// Hands each binary-mode header to `put`, in the binding's order
    /// (see [`evidentsource_cloudevents_kafka::encode`]), without building a
    /// CloudEvent: the caller decides where the bytes go (a `BinaryMessage`,
    /// or straight into rdkafka's headers).
    pub fn write_headers(&self, base_uri: &str, mut put: impl FnMut(&'static str, &[u8])) {
        let mut id = Uuid::encode_buffer();
        put("ce_specversion", b"1.0");
        put(
            "ce_id",
            self.id().hyphenated().encode_lower(&mut id).as_bytes(),
        );
        put("ce_source", source(base_uri, self.database()).as_bytes());
        put("ce_type", self.event_type().as_bytes());
        if let Some(time) = self.time() {
            put("ce_time", format_time(&time).as_bytes());
        }
        let content_type = match self {
            DatabaseEvent::Deleted { .. } => OCTET_STREAM,
            _ => PROTOBUF,
        };
        put("ce_datacontenttype", content_type.as_bytes());
        put(CONTENT_TYPE, content_type.as_bytes());
        let (revision, basis) = match self {
            DatabaseEvent::Created(d) => (d.revision, d.basis),
            DatabaseEvent::Transacted(b) => {
                put("ce_subject", b.id.as_bytes());
                (b.revision, b.basis)
            }
            DatabaseEvent::Deleted { .. } => return,
        };
        let mut digits = itoa::Buffer::new();
        put("ce_revision", digits.format(revision).as_bytes());
        put("ce_basis", digits.format(basis).as_bytes());
    }

    /// The message value: the protobuf body (empty for Deleted).
    pub fn value(&self) -> Vec<u8> {
        match self {
            DatabaseEvent::Created(d) => d.encode_to_vec(),
            DatabaseEvent::Transacted(b) => b.encode_to_vec(),
            DatabaseEvent::Deleted { .. } => Vec::new(),
        }
    }
}

/// `{base_uri}/db/{database}`; a trailing `/` on the base is not doubled.
pub fn source(base_uri: &str, database: &str) -> String {
    format!("{}/db/{database}", base_uri.trim_end_matches('/'))
}

fn ts_key(ts: &Option<Timestamp>) -> String {
    ts.map(|t| format!("{}.{:09}", t.seconds, t.nanos))
        .unwrap_or_default()
}

pub fn to_datetime(ts: &Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(ts.nanos).ok()?;
    Utc.timestamp_opt(ts.seconds, nanos).single()
}

/// What a consumer received, checked for consistency.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedDatabaseEvent {
    pub database: String,
    pub id: String,
    pub time: Option<DateTime<Utc>>,
    /// `ce_revision` / `ce_basis` (absent on Deleted).
    pub revision: Option<u64>,
    pub basis: Option<u64>,
    pub body: ReceivedBody,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReceivedBody {
    Created(Database),
    Transacted(BatchSummary),
    Deleted,
}

/// Why a message is not a valid database event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDatabaseEvent {
    #[error(transparent)]
    Header(#[from] evidentsource_cloudevents_kafka::DecodeError),
    #[error("the message has no key (the database name)")]
    MissingKey,
    #[error("unknown ce_type {0:?}")]
    UnknownType(String),
    #[error("the body does not decode as {message}: {reason}")]
    BadBody {
        message: &'static str,
        reason: String,
    },
    #[error("{0}")]
    Inconsistent(String),
}

impl ReceivedDatabaseEvent {
    /// Parses a received message (key and decoded CloudEvent).
    pub fn parse(key: Option<&[u8]>, event: &Event) -> Result<Self, InvalidDatabaseEvent> {
        let database = key
            .and_then(|k| std::str::from_utf8(k).ok())
            .ok_or(InvalidDatabaseEvent::MissingKey)?
            .to_owned();
        let revision = ext::revision(event)?;
        let basis = ext::basis(event)?;
        let bytes = match event.data() {
            None => &[][..],
            Some(Data::Binary(b)) => b.as_slice(),
            Some(Data::String(s)) => s.as_bytes(),
            Some(Data::Json(_)) => {
                return Err(InvalidDatabaseEvent::BadBody {
                    message: "protobuf",
                    reason: "JSON data".into(),
                });
            }
        };
        let inconsistent = |what: String| Err(InvalidDatabaseEvent::Inconsistent(what));
        let body = match event.ty() {
            CREATED => {
                let d = Database::decode(bytes).map_err(|e| InvalidDatabaseEvent::BadBody {
                    message: "Database",
                    reason: e.to_string(),
                })?;
                if d.name != database || revision != Some(d.revision) || basis != Some(d.basis) {
                    return inconsistent(format!(
                        "created: key {database:?}, ce_revision {revision:?}, ce_basis {basis:?} \
                         but body {d:?}"
                    ));
                }
                ReceivedBody::Created(d)
            }
            TRANSACTED => {
                let b = BatchSummary::decode(bytes).map_err(|e| InvalidDatabaseEvent::BadBody {
                    message: "BatchSummary",
                    reason: e.to_string(),
                })?;
                if b.database != database
                    || revision != Some(b.revision)
                    || basis != Some(b.basis)
                    || event.subject() != Some(b.id.as_str())
                    || b.revision.checked_sub(b.basis) != Some(u64::from(b.event_count))
                {
                    return inconsistent(format!(
                        "transacted: key {database:?}, ce_subject {:?}, ce_revision {revision:?}, \
                         ce_basis {basis:?} but body {b:?}",
                        event.subject()
                    ));
                }
                ReceivedBody::Transacted(b)
            }
            DELETED => {
                if revision.is_some() || basis.is_some() || event.subject().is_some() {
                    return inconsistent(
                        "deleted carries ce_revision, ce_basis or ce_subject".into(),
                    );
                }
                if !bytes.is_empty() {
                    return inconsistent("deleted has a non-empty value".into());
                }
                ReceivedBody::Deleted
            }
            other => return Err(InvalidDatabaseEvent::UnknownType(other.to_owned())),
        };
        Ok(ReceivedDatabaseEvent {
            database,
            id: event.id().to_owned(),
            time: event.time().copied(),
            revision,
            basis,
            body,
        })
    }

    pub fn event_type(&self) -> &'static str {
        match self.body {
            ReceivedBody::Created(_) => CREATED,
            ReceivedBody::Transacted(_) => TRANSACTED,
            ReceivedBody::Deleted => DELETED,
        }
    }
}

/// RFC 3339 with milliseconds, as in `ce_time`.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests;
