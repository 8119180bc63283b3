//! The sample stream event (`events/dynamodb-stream-head-records.json`):
//! every record classified, and each database event's exact headers, key
//! and body bytes.
//!
//! The `ce_id`s are golden literals: THEY MUST NEVER CHANGE. Consumers
//! de-duplicate on `ce_id`, so a later release must give a re-published
//! record the id this release gave it; a failure here means the derivation
//! changed (fix the code, not the literal). More golden ids, for other
//! databases, revisions and times: `shared/database-events/src/tests.rs`.

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use evidentsource_database_events::DatabaseEvent;
use evidentsource_proto::{BatchSummary, Database, Message, Timestamp};
use evidentsource_stream_publisher::{Classified, classify};

fn sample() -> DynamoDbEvent {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/dynamodb-stream-head-records.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ts(seconds: i64, millis: i32) -> Timestamp {
    Timestamp {
        seconds,
        nanos: millis * 1_000_000,
    }
}

fn headers(event: &DatabaseEvent) -> Vec<(String, String)> {
    event
        .encode("https://api.example.com")
        .message
        .headers
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn sample_records_classify_and_encode_exactly() {
    let event = sample();
    let classified: Vec<Classified> = event.records.iter().map(classify).collect();
    assert_eq!(classified.len(), 6);

    let created = Database {
        name: "accounts".into(),
        created_at: Some(ts(1_705_314_600, 123)),
        basis: 0,
        revision: 0,
        revision_timestamp: Some(ts(1_705_314_600, 123)),
    };
    let Classified::Publish(c) = &classified[0] else {
        panic!("{:?}", classified[0])
    };
    assert_eq!(c, &DatabaseEvent::Created(created.clone()));
    let encoded = c.encode("https://api.example.com");
    assert_eq!(encoded.key, "accounts");
    assert_eq!(encoded.message.value, created.encode_to_vec());
    assert_eq!(
        headers(c),
        pairs(&[
            ("ce_specversion", "1.0"),
            ("ce_id", "8b86bbbb-97fd-5706-978d-88be277d833d"),
            ("ce_source", "https://api.example.com/db/accounts"),
            ("ce_type", "com.evidentsource.database.created.v1"),
            ("ce_time", "2024-01-15T10:30:00.123Z"),
            ("ce_datacontenttype", "application/protobuf"),
            ("content-type", "application/protobuf"),
            ("ce_revision", "0"),
            ("ce_basis", "0"),
        ])
    );

    let batch = BatchSummary {
        id: "7f3e8a1c-9876-5432-1fed-cba987654321".into(),
        database: "accounts".into(),
        basis: 0,
        revision: 3,
        event_count: 3,
        recorded_time: Some(ts(1_705_314_605, 456)),
    };
    let Classified::Publish(t) = &classified[1] else {
        panic!("{:?}", classified[1])
    };
    assert_eq!(t, &DatabaseEvent::Transacted(batch.clone()));
    assert_eq!(
        t.encode("https://api.example.com").message.value,
        batch.encode_to_vec()
    );
    assert_eq!(
        headers(t),
        pairs(&[
            ("ce_specversion", "1.0"),
            ("ce_id", "63702412-ef5b-5dd3-8331-24b019fc908e"),
            ("ce_source", "https://api.example.com/db/accounts"),
            ("ce_type", "com.evidentsource.batch.transacted.v1"),
            ("ce_time", "2024-01-15T10:30:05.456Z"),
            ("ce_datacontenttype", "application/protobuf"),
            ("content-type", "application/protobuf"),
            ("ce_subject", "7f3e8a1c-9876-5432-1fed-cba987654321"),
            ("ce_revision", "3"),
            ("ce_basis", "0"),
        ])
    );

    assert_eq!(classified[2], Classified::Skip("not a head item"));

    let Classified::Publish(d) = &classified[3] else {
        panic!("{:?}", classified[3])
    };
    assert_eq!(
        d,
        &DatabaseEvent::Deleted {
            database: "accounts".into(),
            created_at: ts(1_705_314_600, 123),
            deleted_at: ts(1_705_316_400, 789),
        }
    );
    assert!(d.encode("https://api.example.com").message.value.is_empty());
    assert_eq!(
        headers(d),
        pairs(&[
            ("ce_specversion", "1.0"),
            ("ce_id", "be7f5d65-9599-5552-8285-82d1a4c2a6b9"),
            ("ce_source", "https://api.example.com/db/accounts"),
            ("ce_type", "com.evidentsource.database.deleted.v1"),
            ("ce_time", "2024-01-15T11:00:00.789Z"),
            ("ce_datacontenttype", "application/octet-stream"),
            ("content-type", "application/octet-stream"),
        ])
    );

    assert_eq!(classified[4], Classified::Skip("a tombstone expired (TTL)"));
    assert!(
        matches!(&classified[5], Classified::Poison(reason) if reason.contains("not a head item")),
        "{:?}",
        classified[5]
    );

    // Deterministic ids: the same records give byte-identical messages.
    let again: Vec<Classified> = sample().records.iter().map(classify).collect();
    assert_eq!(again, classified);
}
