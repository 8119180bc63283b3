use evidentsource_cloudevents_kafka::{Data, Event, EventBuilder, EventBuilderV10, ext};
use evidentsource_domain::{DatabaseName, Error, Limits, Transaction, quote};
use evidentsource_proto::{CreateDatabaseRequest, DeleteDatabaseRequest, Message, TransactRequest};
use sha2::{Digest, Sha256};

/// `ce_type` of a create-database command.
pub const CREATE_DATABASE: &str = "com.evidentsource.command.create-database.v1";
/// `ce_type` of a transact command.
pub const TRANSACT: &str = "com.evidentsource.command.transact.v1";
/// `ce_type` of a delete-database command.
pub const DELETE_DATABASE: &str = "com.evidentsource.command.delete-database.v1";

const PROTOBUF: &str = "application/protobuf";

/// How a command's value is encoded, from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    Protobuf,
    Json,
}

/// The encoding a content type names. None (no content type) means
/// protobuf, the contract's default; parameters such as `charset` are
/// ignored.
pub fn content_kind(content_type: Option<&str>) -> Result<ContentKind, Error> {
    let Some(content_type) = content_type else {
        return Ok(ContentKind::Protobuf);
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/protobuf" | "application/x-protobuf" => Ok(ContentKind::Protobuf),
        "application/json" => Ok(ContentKind::Json),
        s if s.starts_with("application/") && s.ends_with("+json") => Ok(ContentKind::Json),
        _ => Err(Error::invalid_argument(
            "ce_datacontenttype",
            format!(
                "{}: send application/protobuf or application/json",
                quote(content_type)
            ),
        )),
    }
}

/// A command's request, as a producer sends it.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandRequest {
    CreateDatabase(CreateDatabaseRequest),
    Transact(TransactRequest),
    DeleteDatabase(DeleteDatabaseRequest),
}

impl CommandRequest {
    pub fn ce_type(&self) -> &'static str {
        match self {
            CommandRequest::CreateDatabase(_) => CREATE_DATABASE,
            CommandRequest::Transact(_) => TRANSACT,
            CommandRequest::DeleteDatabase(_) => DELETE_DATABASE,
        }
    }

    /// The database named in the request, as given (not validated).
    pub fn database_name(&self) -> &str {
        match self {
            CommandRequest::CreateDatabase(r) => &r.database_name,
            CommandRequest::Transact(r) => &r.database_name,
            CommandRequest::DeleteDatabase(r) => &r.database_name,
        }
    }

    /// Decodes a command message's value. Errors are `INVALID_ARGUMENT`
    /// naming `ce_type`, `ce_datacontenttype` or the part of `value` at fault.
    pub fn decode(ce_type: &str, content_type: Option<&str>, value: &[u8]) -> Result<Self, Error> {
        let kind = content_kind(content_type)?;
        match ce_type {
            CREATE_DATABASE => decode_as(kind, value).map(CommandRequest::CreateDatabase),
            TRANSACT => decode_as(kind, value).map(CommandRequest::Transact),
            DELETE_DATABASE => decode_as(kind, value).map(CommandRequest::DeleteDatabase),
            other => Err(Error::invalid_argument(
                "ce_type",
                format!(
                    "{} is not a command ({CREATE_DATABASE}, {TRANSACT}, {DELETE_DATABASE})",
                    quote(other)
                ),
            )),
        }
    }

    /// The request in protobuf. Deterministic (map fields are ordered).
    pub fn encode_to_vec(&self) -> Vec<u8> {
        match self {
            CommandRequest::CreateDatabase(r) => r.encode_to_vec(),
            CommandRequest::Transact(r) => r.encode_to_vec(),
            CommandRequest::DeleteDatabase(r) => r.encode_to_vec(),
        }
    }

    /// The request in the protobuf JSON mapping.
    pub fn to_json(&self) -> Vec<u8> {
        let json = match self {
            CommandRequest::CreateDatabase(r) => serde_json::to_vec(r),
            CommandRequest::Transact(r) => serde_json::to_vec(r),
            CommandRequest::DeleteDatabase(r) => serde_json::to_vec(r),
        };
        json.unwrap_or_default()
    }

    /// Identifies the command (its type and request, in canonical protobuf):
    /// the same command sent twice, in JSON or protobuf, has the same
    /// fingerprint.
    pub fn fingerprint(&self) -> Vec<u8> {
        fingerprint_of_bytes(self.ce_type().as_bytes(), &self.encode_to_vec())
    }

    /// The command message: binary mode, `ce_correlationid` set (the
    /// message's key must be the same id), value in protobuf.
    pub fn to_event(&self, correlation_id: &str, id: &str, source: &str) -> Event {
        self.to_event_with(correlation_id, id, source, ContentKind::Protobuf)
    }

    /// [`CommandRequest::to_event`] with the value in the given encoding.
    pub fn to_event_with(
        &self,
        correlation_id: &str,
        id: &str,
        source: &str,
        kind: ContentKind,
    ) -> Event {
        let (content_type, value) = match kind {
            ContentKind::Protobuf => (PROTOBUF, self.encode_to_vec()),
            ContentKind::Json => ("application/json", self.to_json()),
        };
        let mut event = EventBuilderV10::new()
            .id(id)
            .source(source)
            .ty(self.ce_type())
            .subject(self.database_name())
            .time(chrono::Utc::now())
            .build()
            .unwrap_or_default();
        ext::set_correlation_id(&mut event, correlation_id);
        event.set_data(content_type, Data::Binary(value));
        event
    }
}

/// SHA-256 (first 16 bytes) of a type and a value, length-prefixed.
pub fn fingerprint_of_bytes(ce_type: &[u8], value: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update((ce_type.len() as u64).to_le_bytes());
    h.update(ce_type);
    h.update((value.len() as u64).to_le_bytes());
    h.update(value);
    h.finalize()[..16].to_vec()
}

fn decode_as<T>(kind: ContentKind, value: &[u8]) -> Result<T, Error>
where
    T: Message + Default + serde::de::DeserializeOwned,
{
    match kind {
        ContentKind::Protobuf => T::decode(value).map_err(|e| {
            Error::invalid_argument("value", format!("is not a valid protobuf request: {e}"))
        }),
        ContentKind::Json => {
            let de = &mut serde_json::Deserializer::from_slice(value);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                let field = if matches!(path.as_str(), "." | "?" | "") {
                    "value".to_owned()
                } else {
                    format!("value.{path}")
                };
                Error::invalid_argument(
                    &field,
                    format!("is not valid in the protobuf JSON mapping: {}", e.inner()),
                )
            })
        }
    }
}

/// A command validated and ready to execute.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    CreateDatabase(DatabaseName),
    Transact(Transaction),
    DeleteDatabase(DatabaseName),
}

impl Command {
    /// Validates a request; field names follow the request
    /// (`database_name`, `events[2].source`, ...).
    pub fn from_request(request: CommandRequest, limits: &Limits) -> Result<Self, Error> {
        match request {
            CommandRequest::CreateDatabase(r) => {
                DatabaseName::parse_field("database_name", r.database_name)
                    .map(Command::CreateDatabase)
            }
            CommandRequest::Transact(r) => {
                Transaction::from_request(r, limits).map(Command::Transact)
            }
            CommandRequest::DeleteDatabase(r) => {
                DatabaseName::parse_field("database_name", r.database_name)
                    .map(Command::DeleteDatabase)
            }
        }
    }

    pub fn database(&self) -> &DatabaseName {
        match self {
            Command::CreateDatabase(n) | Command::DeleteDatabase(n) => n,
            Command::Transact(t) => &t.database,
        }
    }
}

#[cfg(test)]
mod tests {
    use evidentsource_cloudevents_kafka::{AttributesReader, decode, encode};
    use evidentsource_domain::ErrorCode;

    use super::*;

    fn create(name: &str) -> CommandRequest {
        CommandRequest::CreateDatabase(CreateDatabaseRequest {
            database_name: name.into(),
        })
    }

    #[test]
    fn content_kinds() {
        assert_eq!(content_kind(None).unwrap(), ContentKind::Protobuf);
        assert_eq!(
            content_kind(Some("Application/JSON; charset=utf-8")).unwrap(),
            ContentKind::Json
        );
        assert_eq!(
            content_kind(Some("application/cloudevents+json")).unwrap(),
            ContentKind::Json
        );
        assert_eq!(
            content_kind(Some("application/x-protobuf")).unwrap(),
            ContentKind::Protobuf
        );
        let e = content_kind(Some("text/plain")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("ce_datacontenttype"));
    }

    #[test]
    fn round_trips_in_both_encodings_with_one_fingerprint() {
        let requests = [
            create("orders"),
            CommandRequest::DeleteDatabase(DeleteDatabaseRequest {
                database_name: "orders".into(),
            }),
            CommandRequest::Transact(TransactRequest {
                database_name: "orders".into(),
                events: vec![evidentsource_proto::cloudevents::CloudEvent {
                    id: "e1".into(),
                    source: "https://x/orders".into(),
                    spec_version: "1.0".into(),
                    r#type: "placed".into(),
                    ..Default::default()
                }],
                conditions: vec![],
                transaction_id: "t1".into(),
            }),
        ];
        for request in requests {
            for kind in [ContentKind::Protobuf, ContentKind::Json] {
                let event = request.to_event_with("c-1", "id-1", "https://x/client", kind);
                let message = encode(&event);
                let back = decode(
                    message
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), Some(v.as_slice()))),
                    Some(&message.value),
                )
                .unwrap();
                assert_eq!(ext::correlation_id(&back), Some("c-1"));
                let value = match back.data() {
                    Some(Data::Binary(b)) => b.clone(),
                    other => panic!("{other:?}"),
                };
                let decoded =
                    CommandRequest::decode(back.ty(), back.datacontenttype(), &value).unwrap();
                assert_eq!(decoded, request);
                assert_eq!(decoded.fingerprint(), request.fingerprint());
            }
        }
        assert_ne!(create("a").fingerprint(), create("b").fingerprint());
    }

    #[test]
    fn decode_errors_name_the_field() {
        let cases: [(&str, Option<&str>, &[u8], &str); 6] = [
            ("com.example.unknown", None, b"", "ce_type"),
            (
                CREATE_DATABASE,
                Some("text/plain"),
                b"",
                "ce_datacontenttype",
            ),
            (CREATE_DATABASE, None, &[0xff, 0xff, 0xff], "value"),
            (CREATE_DATABASE, Some("application/json"), b"{", "value"),
            (
                CREATE_DATABASE,
                Some("application/json"),
                br#"{"databaseName": 7}"#,
                "value.databaseName",
            ),
            (
                TRANSACT,
                Some("application/json"),
                br#"{"databaseName": "a", "events": [{"id": 1}]}"#,
                "value.events[0].id",
            ),
        ];
        for (ty, ct, value, field) in cases {
            let e = CommandRequest::decode(ty, ct, value).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArgument);
            assert_eq!(e.field.as_deref(), Some(field), "{ty} {ct:?}: {e:?}");
        }
    }

    #[test]
    fn validation_names_the_field() {
        let limits = Limits::default();
        let e = Command::from_request(create("1bad"), &limits).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("database_name"));
        let ok = Command::from_request(create("good"), &limits).unwrap();
        assert_eq!(ok.database().as_str(), "good");
    }
}
