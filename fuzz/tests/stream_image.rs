//! The stream publisher's reading of a DynamoDB stream record (`classify`):
//! whatever the head image holds, a database event, a skip or a poison
//! verdict with a bounded reason, never a panic, and bounded allocation.

use aws_lambda_events::event::dynamodb::EventRecord;
use evidentsource_fuzz::{Counting, check_allocation, fuzz};
use evidentsource_stream_publisher::{Classified, classify};
use proptest::{collection::vec, prelude::*, test_runner::TestCaseError};
use serde_json::{Value, json};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ATTRIBUTES: &[&str] = &[
    "pk",
    "sk",
    "name",
    "state",
    "incarnation",
    "created_at",
    "basis",
    "revision",
    "revision_time",
    "batch_id",
    "deleted_at",
    "other",
];

fn attribute_value() -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("1e400".to_owned()),
        Just("-0.5".to_owned()),
        "[0-9.e+-]{0,30}",
    ];
    let text = prop_oneof![
        Just("active".to_owned()),
        Just("deleted".to_owned()),
        Just("db#shop".to_owned()),
        Just("head".to_owned()),
        any::<String>(),
        (1usize..200_000).prop_map(|n| "s".repeat(n)),
    ];
    prop_oneof![
        text.prop_map(|s| json!({ "S": s })),
        number.prop_map(|n| json!({ "N": n })),
        any::<bool>().prop_map(|b| json!({ "BOOL": b })),
        Just(json!({ "NULL": true })),
        Just(json!({ "B": "AAEC" })),
        Just(json!({ "M": { "x": { "S": "y" } } })),
        Just(json!({ "L": [ { "N": "1" } ] })),
    ]
}

/// A valid Transacted head record with some attributes replaced or removed.
fn record() -> impl Strategy<Value = Value> {
    let edits = vec(
        (
            prop::sample::select(ATTRIBUTES.to_vec()),
            prop::option::weighted(0.8, attribute_value()),
        ),
        0..5,
    );
    let event_name = prop::sample::select(vec!["INSERT", "MODIFY", "REMOVE", "OTHER"]);
    (edits, event_name, any::<bool>()).prop_map(|(edits, event_name, keep_keys)| {
        let mut image = json!({
            "pk": {"S": "db#shop"}, "sk": {"S": "head"}, "name": {"S": "shop"},
            "state": {"S": "active"}, "incarnation": {"S": "0123456789abcdef"},
            "created_at": {"N": "1705314600000"}, "basis": {"N": "2"}, "revision": {"N": "4"},
            "revision_time": {"N": "1705314600500"}, "batch_id": {"S": "b-1"}
        });
        for (attribute, value) in edits {
            let map = image.as_object_mut().unwrap();
            match value {
                Some(v) => map.insert(attribute.to_owned(), v),
                None => map.remove(attribute),
            };
        }
        let keys = if keep_keys {
            json!({"pk": {"S": "db#shop"}, "sk": {"S": "head"}})
        } else {
            json!({"pk": image.get("pk").cloned().unwrap_or(json!({"S": "x"})),
                   "sk": image.get("sk").cloned().unwrap_or(json!({"S": "y"}))})
        };
        json!({
            "eventID": "e1", "eventName": event_name, "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
            "dynamodb": {
                "ApproximateCreationDateTime": 1_705_314_600,
                "Keys": keys, "NewImage": image, "SequenceNumber": "1", "SizeBytes": 200,
                "StreamViewType": "NEW_IMAGE"
            }
        })
    })
}

#[test]
fn stream_head_images() {
    fuzz("stream image", record(), |value| {
        let len = value.to_string().len();
        // Shapes the Lambda runtime itself would refuse never reach us.
        let Ok(record) = serde_json::from_value::<EventRecord>(value) else {
            return Ok(());
        };
        let base = Counting::reset_peak();
        let verdict = classify(&record);
        check_allocation(base, len)?;
        if let Classified::Poison(reason) = verdict {
            prop_assert!(reason.len() <= 1024, "a {}-byte reason", reason.len());
        }
        Ok::<(), TestCaseError>(())
    });
}
