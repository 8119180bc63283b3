//! Stream batches as Lambda delivers them to the publisher: head-item
//! records of `Transacted` changes, spread over a few databases, each
//! database's revisions contiguous.

use aws_lambda_events::event::dynamodb::Event;
use serde_json::{Value, json};

/// How many databases a batch spreads over (they map to partitions).
pub const DATABASES: usize = 16;

/// `len` bytes of no particular pattern, base64 as Lambda delivers them.
fn recent_facts_base64(len: usize) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The Lambda event (JSON, as the runtime receives it) of `count`
/// Transacted records.
pub fn stream_event_json(count: usize) -> Value {
    let t0: i64 = 1_795_000_000_000;
    // A head's recent facts as a database with steady traffic has them:
    // at their cap (storage's `recent.rs`), base64 as Lambda delivers
    // binary attributes.
    let recent = recent_facts_base64(evidentsource_storage::RECENT_FACTS_MAX_BYTES);
    let records: Vec<Value> = (0..count)
        .map(|i| {
            let db = format!("bench-db-{:02}", i % DATABASES);
            let n = (i / DATABASES) as u64;
            let (basis, revision) = (n * 3, n * 3 + 3);
            let time = t0 + i as i64;
            json!({
                "eventID": format!("e{i}"),
                "eventName": "MODIFY",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/evidentsource/stream/2026-01-01T00:00:00.000",
                "dynamodb": {
                    "ApproximateCreationDateTime": time / 1000,
                    "Keys": {"pk": {"S": format!("db#{db}")}, "sk": {"S": "head"}},
                    "NewImage": {
                        "pk": {"S": format!("db#{db}")}, "sk": {"S": "head"},
                        "name": {"S": db}, "state": {"S": "active"},
                        "incarnation": {"S": "0123456789abcdef"},
                        "created_at": {"N": t0.to_string()},
                        "basis": {"N": basis.to_string()}, "revision": {"N": revision.to_string()},
                        "revision_time": {"N": time.to_string()},
                        "batch_id": {"S": format!("9a1c5e2b-0000-4000-8000-{i:012}")},
                        "rf": {"B": recent.as_str()}
                    },
                    "SequenceNumber": format!("{:021}", i + 1),
                    "SizeBytes": 220,
                    "StreamViewType": "NEW_IMAGE"
                }
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The same event, deserialized as the Rust runtime does.
pub fn stream_event(count: usize) -> Event {
    serde_json::from_value(stream_event_json(count)).expect("a valid DynamoDB event")
}
