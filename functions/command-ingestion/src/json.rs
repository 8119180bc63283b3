//! The API's JSON: the `Database` and `BatchSummary` views (proto field
//! names in snake_case, RFC 3339 times, plain numbers), and CloudEvents in
//! the CloudEvents JSON format, converted to and from the protobuf format the
//! storage layer keeps.

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{SecondsFormat, TimeZone, Utc};
use evidentsource_domain::{Error, SelectorLimits};
use evidentsource_proto::{
    AppendCondition, BatchSummary, Database, Timestamp, TransactRequest,
    cloudevents::cloud_event::{Data, cloud_event_attribute_value::Attr},
};
use evidentsource_storage::StoredEvent;
use serde::Serialize;
use serde_json::{Map, Value, json};

pub use evidentsource_commands::{cloudevent_from_json, is_json};

use crate::query::QueryInput;

fn rfc3339(ts: &Option<Timestamp>) -> Option<String> {
    let ts = ts.as_ref()?;
    let t = Utc
        .timestamp_opt(ts.seconds, u32::try_from(ts.nanos).ok()?)
        .single()?;
    Some(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[derive(Debug, Serialize)]
pub struct DatabaseJson {
    pub name: String,
    pub created_at: Option<String>,
    pub basis: u64,
    pub revision: u64,
    pub revision_timestamp: Option<String>,
}

impl From<&Database> for DatabaseJson {
    fn from(d: &Database) -> Self {
        DatabaseJson {
            name: d.name.clone(),
            created_at: rfc3339(&d.created_at),
            basis: d.basis,
            revision: d.revision,
            revision_timestamp: rfc3339(&d.revision_timestamp),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct BatchSummaryJson {
    pub id: String,
    pub database: String,
    pub basis: u64,
    pub revision: u64,
    pub event_count: u32,
    pub recorded_time: Option<String>,
}

impl From<&BatchSummary> for BatchSummaryJson {
    fn from(b: &BatchSummary) -> Self {
        BatchSummaryJson {
            id: b.id.clone(),
            database: b.database.clone(),
            basis: b.basis,
            revision: b.revision,
            event_count: b.event_count,
            recorded_time: rfc3339(&b.recorded_time),
        }
    }
}

/// The fields of each JSON request body, as its parser reads them
/// (`docs/openapi.yaml` documents exactly these: the openapi test).
pub const CREATE_FIELDS: &[&str] = &["name"];
pub const TRANSACT_FIELDS: &[&str] = &["transaction_id", "events", "conditions"];
pub const QUERY_FIELDS: &[&str] = &["selector", "from", "limit"];

/// Parses the JSON body of `POST /databases`: the name, not yet validated.
pub fn create_request(body: &[u8]) -> Result<String, Error> {
    let mut fields = object_body(body, "a database", CREATE_FIELDS)?;
    match fields.remove("name") {
        None | Some(Value::Null) => Err(Error::invalid_argument("name", "is required")),
        Some(Value::String(name)) => Ok(name),
        Some(_) => Err(Error::invalid_argument("name", "must be a string")),
    }
}

/// A request body that must be a JSON object with only the `known`
/// fields (of `what`, for the error naming a stranger).
fn object_body(
    body: &[u8],
    what: &str,
    known: &[&str],
) -> Result<serde_json::Map<String, Value>, Error> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Error::invalid_argument("body", format!("is not valid JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(Error::invalid_argument("body", "must be a JSON object"));
    };
    if let Some(unknown) = fields.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(Error::invalid_argument(
            unknown.clone(),
            format!("is not a field of {what} ({})", known.join(", ")),
        ));
    }
    Ok(fields)
}

/// Parses the JSON body of `POST /databases/{name}/transactions` into the
/// transact request (the database comes from the path).
pub fn transact_request(database: &str, body: &[u8]) -> Result<TransactRequest, Error> {
    let mut fields = object_body(body, "a transaction", TRANSACT_FIELDS)?;
    let transaction_id = match fields.remove("transaction_id") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(Error::invalid_argument(
                "transaction_id",
                "must be a string",
            ));
        }
    };
    let events = match fields.remove("events") {
        Some(Value::Array(events)) => events
            .into_iter()
            .enumerate()
            .map(|(i, e)| cloudevent_from_json(e).map_err(|e| e.within(&format!("events[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?,
        None => return Err(Error::invalid_argument("events", "is required")),
        Some(_) => {
            return Err(Error::invalid_argument(
                "events",
                "must be an array of CloudEvents",
            ));
        }
    };
    let conditions = match fields.remove("conditions") {
        None | Some(Value::Null) => Vec::new(),
        Some(value @ Value::Array(_)) => {
            serde_path_to_error::deserialize::<_, Vec<AppendCondition>>(value).map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." {
                    "conditions".to_owned()
                } else {
                    format!("conditions{path}")
                };
                Error::invalid_argument(
                    field.replace("conditions.[", "conditions["),
                    e.into_inner(),
                )
            })?
        }
        Some(_) => return Err(Error::invalid_argument("conditions", "must be an array")),
    };
    Ok(TransactRequest {
        database_name: database.to_owned(),
        events,
        conditions,
        transaction_id,
    })
}

/// Parses the JSON body of `POST /databases/{name}/query`:
/// `{"selector": …, "from": r, "limit": n}` (numbers as JSON numbers or
/// decimal strings, as the protobuf JSON mapping allows).
pub fn query_request(body: &[u8], limits: SelectorLimits) -> Result<QueryInput, Error> {
    let mut fields = object_body(body, "a query", QUERY_FIELDS)?;
    let selector = match fields.remove("selector") {
        None | Some(Value::Null) => return Err(Error::invalid_argument("selector", "is required")),
        Some(v) => crate::query::selector_from_json(v, limits)?,
    };
    let number = |field: &str, value: Option<Value>| -> Result<Option<u64>, Error> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.is_u64() => Ok(n.as_u64()),
            Some(Value::String(s)) if s.parse::<u64>().is_ok() => Ok(s.parse().ok()),
            Some(_) => Err(Error::invalid_argument(
                field,
                "must be an unsigned integer (a number or a decimal string)",
            )),
        }
    };
    Ok(QueryInput {
        selector,
        from: number("from", fields.remove("from"))?,
        limit: number("limit", fields.remove("limit"))?,
        protobuf: false,
    })
}

/// A stored event → the CloudEvents JSON format, with its `revision`.
pub fn cloudevent_to_json(stored: &StoredEvent) -> Value {
    let e = &stored.event;
    let mut out = Map::new();
    out.insert("specversion".into(), json!(e.spec_version));
    out.insert("id".into(), json!(e.id));
    out.insert("source".into(), json!(e.source));
    out.insert("type".into(), json!(e.r#type));
    let mut content_type = None;
    for (name, value) in &e.attributes {
        let v = match &value.attr {
            Some(Attr::CeBoolean(b)) => json!(b),
            Some(Attr::CeInteger(i)) => json!(i),
            Some(Attr::CeString(s) | Attr::CeUri(s) | Attr::CeUriRef(s)) => json!(s),
            Some(Attr::CeBytes(b)) => json!(STANDARD.encode(b)),
            Some(Attr::CeTimestamp(t)) => json!(rfc3339(&Some(*t))),
            None => continue,
        };
        if name == "datacontenttype" {
            content_type = v.as_str().map(str::to_owned);
        }
        out.insert(name.clone(), v);
    }
    out.insert("revision".into(), json!(stored.revision));
    match &e.data {
        None => {}
        Some(Data::TextData(t)) if is_json(content_type.as_deref()) => {
            let v = serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.clone()));
            out.insert("data".into(), v);
        }
        Some(Data::TextData(t)) => {
            out.insert("data".into(), json!(t));
        }
        Some(Data::BinaryData(b)) => {
            out.insert("data_base64".into(), json!(STANDARD.encode(b)));
        }
        Some(Data::ProtoData(any)) => {
            out.insert("data_base64".into(), json!(STANDARD.encode(&any.value)));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudevent_json_round_trip() {
        let input = json!({
            "specversion": "1.0", "id": "e1", "source": "https://x/orders", "type": "placed",
            "subject": "o-1", "time": "2024-01-15T10:30:00.123Z", "tenant": "acme", "priority": 3,
            "urgent": true, "data": {"amount": 12}
        });
        let event = cloudevent_from_json(input.clone()).unwrap();
        assert_eq!(event.data, Some(Data::TextData(r#"{"amount":12}"#.into())));
        let back = cloudevent_to_json(&StoredEvent { revision: 7, event });
        let mut expected = input;
        expected["revision"] = json!(7);
        assert_eq!(back, expected);
    }

    #[test]
    fn binary_and_text_data() {
        let e = cloudevent_from_json(json!({
            "specversion": "1.0", "id": "e", "source": "/s", "type": "t",
            "datacontenttype": "application/octet-stream", "data_base64": "AAEC"
        }))
        .unwrap();
        assert_eq!(e.data, Some(Data::BinaryData(vec![0, 1, 2])));
        let back = cloudevent_to_json(&StoredEvent {
            revision: 1,
            event: e,
        });
        assert_eq!(back["data_base64"], json!("AAEC"));

        let e = cloudevent_from_json(json!({
            "specversion": "1.0", "id": "e", "source": "/s", "type": "t",
            "datacontenttype": "text/plain", "data": "hello"
        }))
        .unwrap();
        assert_eq!(e.data, Some(Data::TextData("hello".into())));
    }

    #[test]
    fn errors_name_the_field() {
        let field = |v: Value| {
            cloudevent_from_json(v)
                .unwrap_err()
                .field
                .unwrap_or_default()
        };
        assert_eq!(
            field(json!({"specversion": "1.0", "source": "/s", "type": "t"})),
            "id"
        );
        assert_eq!(
            field(json!({"specversion": "1.0", "id": 5, "source": "/s", "type": "t"})),
            "id"
        );
        assert_eq!(
            field(
                json!({"specversion": "1.0", "id": "e", "source": "/s", "type": "t", "time": "noon"})
            ),
            "time"
        );
        assert_eq!(
            field(
                json!({"specversion": "1.0", "id": "e", "source": "/s", "type": "t", "data_base64": "!!"})
            ),
            "data_base64"
        );
        assert_eq!(
            field(json!({"specversion": "1.0", "id": "e", "source": "/s", "type": "t", "x": [1]})),
            "x"
        );
        assert_eq!(
            field(
                json!({"specversion": "1.0", "id": "e", "source": "/s", "type": "t", "big": 5_000_000_000u64})
            ),
            "big"
        );

        let body = |v: Value| transact_request("db", v.to_string().as_bytes()).unwrap_err();
        assert_eq!(body(json!([])).field.as_deref(), Some("body"));
        assert_eq!(body(json!({})).field.as_deref(), Some("events"));
        assert_eq!(
            body(json!({"events": [], "extra": 1})).field.as_deref(),
            Some("extra")
        );
        assert_eq!(
            body(json!({"events": [7]})).field.as_deref(),
            Some("events[0]")
        );
        let err = body(
            json!({"events": [], "conditions": [{"selector": {"stream_equals": "s"}, "max": "x"}]}),
        );
        assert!(
            err.field.as_deref().unwrap().starts_with("conditions[0]"),
            "{err:?}"
        );
        let err = transact_request("db", b"{not json").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("body"));
    }

    #[test]
    fn conditions_use_the_protobuf_json_mapping() {
        let r = transact_request(
            "db",
            json!({"transaction_id": "t", "events": [], "conditions": [
                {"selector": {"and": {"selectors": [{"stream_equals": "orders"}, {"subject_starts_with": "o-"}]}}, "max": 0},
                {"selector": {"event_type_equals": "x"}, "range": {"min": 1, "max": 5}}
            ]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(r.conditions.len(), 2);
        assert_eq!(r.transaction_id, "t");
        assert_eq!(r.database_name, "db");
    }
}
