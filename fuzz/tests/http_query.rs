//! The HTTP query body (JSON and protobuf) as `parse_query` reads it:
//! whatever the bytes, a query or a 4xx refusal with a bounded message,
//! never a panic or a 5xx, and bounded allocation.

use evidentsource_command_ingestion::parse_query;
use evidentsource_domain::{Error, SelectorLimits};
use evidentsource_fuzz::{Counting, check_allocation, fuzz};
use evidentsource_proto::{EventSelector, EventSelectorList, QueryRequest, event_selector};
use lambda_http::{Body, Request};
use proptest::{collection::vec, prelude::*, test_runner::TestCaseError};
use prost::Message;
use serde_json::{Value, json};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Names the JSON decoder looks for, so generated objects reach deep.
const KEYS: &[&str] = &[
    "selector",
    "from",
    "limit",
    "selectors",
    "stream_equals",
    "streamStartsWith",
    "subject_equals",
    "subject_starts_with",
    "event_type_equals",
    "event_type_starts_with",
    "and",
    "or",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9.-]{0,12}",
        any::<String>(),
        (1usize..300_000).prop_map(|n| "x".repeat(n)),
        Just("18446744073709551616".to_owned()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    evidentsource_fuzz::json_value(KEYS, text().boxed(), 6, 6)
}

/// A valid query with one of its parts replaced.
fn mutated_json() -> impl Strategy<Value = Value> {
    (0usize..4, json_value()).prop_map(|(at, new)| {
        let mut v = json!({
            "selector": {"or": {"selectors": [{"subject_equals": "o-1"}, {"stream_starts_with": "ord"}]}},
            "from": 3,
            "limit": 10
        });
        let path = ["/selector", "/from", "/limit", "/selector/or/selectors/0"][at];
        if let Some(slot) = v.pointer_mut(path) {
            *slot = new;
        }
        v
    })
}

/// A valid protobuf query, then bytes flipped, cut or inserted.
fn protobuf() -> impl Strategy<Value = Vec<u8>> {
    let request = (text(), any::<u64>(), any::<u32>()).prop_map(|(subject, from, limit)| {
        let leaf = EventSelector {
            selector: Some(event_selector::Selector::SubjectEquals(subject)),
        };
        QueryRequest {
            selector: Some(EventSelector {
                selector: Some(event_selector::Selector::And(EventSelectorList {
                    selectors: vec![leaf],
                })),
            }),
            from,
            limit,
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
        1 => json_value().prop_map(|v| (None, serde_json::to_vec(&v).unwrap())),
        2 => protobuf().prop_map(|b| (Some("application/protobuf"), b)),
        1 => vec(any::<u8>(), 0..2048).prop_map(|b| (Some("application/json"), b)),
    ]
}

#[test]
fn http_query_bodies() {
    let limits = SelectorLimits::default();
    fuzz("http query", body(), |(content_type, bytes)| {
        let mut request = Request::new(Body::Binary(bytes.clone()));
        if let Some(ct) = content_type {
            request
                .headers_mut()
                .insert("content-type", ct.parse().unwrap());
        }
        let base = Counting::reset_peak();
        let outcome = parse_query(&request, limits);
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
