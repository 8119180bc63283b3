//! The HTTP transact body (JSON and protobuf) as `parse_transaction` reads
//! it: whatever the bytes, a transaction or a 4xx refusal with a bounded
//! message, never a panic or a 5xx, and bounded allocation.

use evidentsource_command_ingestion::parse_transaction;
use evidentsource_domain::{DatabaseName, Error, Limits};
use evidentsource_fuzz::{Counting, check_allocation, fuzz};
use evidentsource_proto::{
    AppendCondition, EventSelector, TransactRequest, append_condition,
    cloudevents::{CloudEvent, cloud_event::Data},
    event_selector,
};
use lambda_http::{Body, Request};
use proptest::{collection::vec, prelude::*, test_runner::TestCaseError};
use prost::Message;
use serde_json::Value;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Names the JSON decoder looks for, so generated objects reach deep.
const KEYS: &[&str] = &[
    "events",
    "conditions",
    "transaction_id",
    "transactionId",
    "id",
    "source",
    "specversion",
    "type",
    "subject",
    "time",
    "data",
    "data_base64",
    "datacontenttype",
    "dataschema",
    "selector",
    "max",
    "min",
    "range",
    "stream_equals",
    "stream_starts_with",
    "subject_equals",
    "subject_starts_with",
    "event_type_equals",
    "event_type_starts_with",
    "and",
    "or",
    "database_name",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9./:-]{0,12}",
        any::<String>(),
        // Long enough to cross every length limit.
        (1usize..300_000).prop_map(|n| "x".repeat(n)),
        Just("2024-01-15T10:30:00.123Z".to_owned()),
        Just("0000-01-01T00:00:00Z".to_owned()),
        Just("https://example.com/orders".to_owned()),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    evidentsource_fuzz::json_value(KEYS, text().boxed(), 5, 8)
}

/// A valid JSON request.
fn valid_json() -> Value {
    serde_json::json!({
        "events": [
            {"id": "order-1", "source": "https://shop.example.com/orders", "specversion": "1.0",
             "type": "com.shop.order.placed", "subject": "order-1",
             "time": "2024-01-15T10:30:00.123Z", "datacontenttype": "application/json",
             "data": {"total": 42}},
            {"id": "order-2", "source": "https://shop.example.com/orders", "specversion": "1.0",
             "type": "com.shop.order.placed", "data_base64": "AAEC"}
        ],
        "conditions": [
            {"selector": {"and": [{"stream_equals": "orders"}, {"subject_equals": "order-1"}]}, "max": 0},
            {"selector": {"event_type_starts_with": "com.shop"}, "range": {"min": 0, "max": 9}}
        ],
        "transaction_id": "checkout-1"
    })
}

/// Every JSON pointer in `value`.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let path = format!("{at}/{k}");
                out.push(path.clone());
                pointers(v, path, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let path = format!("{at}/{i}");
                out.push(path.clone());
                pointers(v, path, out);
            }
        }
        _ => {}
    }
}

/// The valid request with a few of its values replaced or removed: deep
/// paths get exercised, not only the first check.
fn mutated_json() -> impl Strategy<Value = Value> {
    vec((any::<usize>(), prop::option::of(json())), 1..4).prop_map(|edits| {
        let mut value = valid_json();
        for (pick, replacement) in edits {
            let mut paths = Vec::new();
            pointers(&value, String::new(), &mut paths);
            let path = &paths[pick % paths.len()];
            let (parent, last) = path.rsplit_once('/').unwrap();
            match (value.pointer_mut(parent), replacement) {
                (Some(Value::Object(map)), None) => {
                    map.remove(last);
                }
                (Some(Value::Array(items)), None) => {
                    items.remove(last.parse::<usize>().unwrap());
                }
                (Some(_), Some(new)) => *value.pointer_mut(path).unwrap() = new,
                _ => {}
            }
        }
        value
    })
}

/// A valid protobuf request, then bytes flipped, cut or inserted.
fn protobuf() -> impl Strategy<Value = Vec<u8>> {
    let request = (text(), text(), text(), text(), any::<u64>()).prop_map(|(id, source, ty, subject, max)| {
        let mut event = CloudEvent {
            id,
            source,
            spec_version: "1.0".into(),
            r#type: ty,
            data: Some(Data::TextData("{}".into())),
            ..Default::default()
        };
        event.attributes.insert(
            "subject".into(),
            evidentsource_proto::cloudevents::cloud_event::CloudEventAttributeValue {
                attr: Some(
                    evidentsource_proto::cloudevents::cloud_event::cloud_event_attribute_value::Attr::CeString(subject.clone()),
                ),
            },
        );
        TransactRequest {
            database_name: String::new(),
            events: vec![event],
            conditions: vec![AppendCondition {
                selector: Some(EventSelector {
                    selector: Some(event_selector::Selector::SubjectEquals(subject)),
                }),
                bound: Some(append_condition::Bound::Max(max)),
            }],
            transaction_id: String::new(),
        }
        .encode_to_vec()
    });
    (request, vec((any::<usize>(), any::<u8>(), 0u8..3), 0..8)).prop_map(|(mut bytes, edits)| {
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let at = at % bytes.len();
            match op {
                0 => bytes[at] ^= byte,
                1 => bytes.truncate(at),
                _ => bytes.insert(at, byte),
            }
        }
        bytes
    })
}

fn body() -> impl Strategy<Value = (Option<&'static str>, Vec<u8>)> {
    prop_oneof![
        4 => mutated_json().prop_map(|v| (Some("application/json"), serde_json::to_vec(&v).unwrap())),
        1 => json().prop_map(|v| (Some("application/json"), serde_json::to_vec(&v).unwrap())),
        1 => json().prop_map(|v| (None, serde_json::to_vec(&v).unwrap())),
        2 => protobuf().prop_map(|b| (Some("application/protobuf"), b)),
        1 => vec(any::<u8>(), 0..2048).prop_map(|b| (Some("application/json"), b)),
        1 => vec(any::<u8>(), 0..2048).prop_map(|b| (Some("application/protobuf"), b)),
    ]
}

#[test]
fn http_transact_bodies() {
    let name = DatabaseName::parse("shop").unwrap();
    let limits = Limits::default();
    fuzz("http transact", body(), |(content_type, bytes)| {
        let mut request = Request::new(Body::Binary(bytes.clone()));
        if let Some(ct) = content_type {
            request
                .headers_mut()
                .insert("content-type", ct.parse().unwrap());
        }
        let base = Counting::reset_peak();
        let outcome = parse_transaction(&name, &request, &limits);
        check_allocation(base, bytes.len())?;
        if let Err(refusal) = outcome {
            prop_assert!(
                (400..500).contains(&refusal.status),
                "{} for {:?}",
                refusal.status,
                refusal.error
            );
            prop_assert!(
                refusal.error.message.len() <= Error::MAX_MESSAGE_BYTES,
                "a {}-byte message",
                refusal.error.message.len()
            );
        }
        Ok::<(), TestCaseError>(())
    });
}
