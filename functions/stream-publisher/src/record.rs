//! What a DynamoDB stream record means to the publisher. The keys, the
//! head item and what its image means are the table's schema
//! (`evidentsource-table-schema`), shared with storage, which writes them.

use aws_lambda_events::event::dynamodb::EventRecord;
use evidentsource_database_events::DatabaseEvent;
use evidentsource_domain::{quote, quote::truncate_message};
use evidentsource_table_schema::{HeadItem, stream};

/// The outcome of reading one stream record.
#[derive(Debug, Clone, PartialEq)]
pub enum Classified {
    /// A database-level change to publish.
    Publish(DatabaseEvent),
    /// Not a database event (another item, or a tombstone expiring): the
    /// event source filter keeps these out, this is the second line.
    Skip(&'static str),
    /// A head record that can never be published (its image does not
    /// decode): logged, counted and skipped so that it never blocks the shard.
    Poison(String),
}

/// The stream event names of a head item's change (the table's schema,
/// shared with the indexer).
pub const PUBLISHED_EVENT_NAMES: [&str; 2] = stream::HEAD_CHANGE_EVENT_NAMES;

/// The event name of a tombstone expiring (TTL): not a database event.
pub const EXPIRED_EVENT_NAME: &str = stream::EXPIRED_EVENT_NAME;

/// The database a record is about, from its key (`db#{name}`), for logs.
pub fn database_of(record: &EventRecord) -> Option<String> {
    stream::database_of_keys(&record.change.keys).map(str::to_owned)
}

/// The batch id of a commit's head record, for logs (`None` for a
/// creation, a deletion, or what does not read as a head item).
pub fn batch_id_of(record: &EventRecord) -> Option<String> {
    if !is_head(record) {
        return None;
    }
    match HeadItem::change_of_image(&record.change.new_image) {
        Ok(DatabaseEvent::Transacted(batch)) => Some(batch.id),
        _ => None,
    }
}

fn is_head(record: &EventRecord) -> bool {
    stream::is_head_record(&record.change.keys)
}

pub fn classify(record: &EventRecord) -> Classified {
    if !is_head(record) {
        return Classified::Skip("not a head item");
    }
    match record.event_name.as_str() {
        name if PUBLISHED_EVENT_NAMES.contains(&name) => {}
        EXPIRED_EVENT_NAME => return Classified::Skip("a tombstone expired (TTL)"),
        _ => {
            return Classified::Poison(format!("unknown event name {}", quote(&record.event_name)));
        }
    }
    match HeadItem::change_of_image(&record.change.new_image) {
        Ok(event) => Classified::Publish(event),
        // The reason may quote the image: bounded, it fits a log line and a
        // dead letter (SQS takes at most 256 KB) whatever the item holds.
        Err(error) => {
            let mut reason = error.to_string();
            truncate_message(&mut reason, MAX_REASON_BYTES);
            Classified::Poison(reason)
        }
    }
}

/// Longest poison reason, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// A stream record with these keys (`None`: absent; a JSON value: the
    /// attribute as the stream writes it) and this new image.
    fn record(event_name: &str, pk: Option<Value>, sk: Option<Value>, image: Value) -> EventRecord {
        let mut keys = serde_json::Map::new();
        if let Some(pk) = pk {
            keys.insert("pk".into(), pk);
        }
        if let Some(sk) = sk {
            keys.insert("sk".into(), sk);
        }
        serde_json::from_value(json!({
            "eventID": "e1", "eventName": event_name, "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {
                "Keys": keys, "NewImage": image, "SequenceNumber": "1",
                "SizeBytes": 1, "StreamViewType": "NEW_IMAGE"
            }
        }))
        .unwrap()
    }

    fn s(v: &str) -> Option<Value> {
        Some(json!({ "S": v }))
    }

    fn created_image() -> Value {
        json!({
            "pk": {"S": "db#accounts"}, "sk": {"S": "head"}, "name": {"S": "accounts"},
            "state": {"S": "active"}, "incarnation": {"S": "00ff"},
            "created_at": {"N": "1705314600123"}, "basis": {"N": "0"},
            "revision": {"N": "0"}, "revision_time": {"N": "1705314600123"}
        })
    }

    /// The keys are read by the table's schema (`stream`, tested there);
    /// here only that `classify` skips what is not a head record.
    #[test]
    fn records_of_other_items_are_skipped() {
        for (pk, sk) in [
            (s("db#accounts"), s("00000000000000000001")),
            (s("ev#accounts#00ff"), s("head")),
            (None, s("head")),
        ] {
            let r = record("INSERT", pk.clone(), sk.clone(), created_image());
            assert_eq!(
                classify(&r),
                Classified::Skip("not a head item"),
                "{pk:?} {sk:?}"
            );
        }
        let head = record("INSERT", s("db#a#b"), s("head"), created_image());
        assert_eq!(database_of(&head).as_deref(), Some("a#b"));
    }

    #[test]
    fn a_commits_record_names_its_batch() {
        let mut committed = created_image();
        committed["basis"] = json!({"N": "3"});
        committed["revision"] = json!({"N": "5"});
        committed["batch_id"] = json!({"S": "b-42"});
        // (keys, image, batch id)
        let cases = [
            (s("db#accounts"), s("head"), committed.clone(), Some("b-42")),
            (s("db#accounts"), s("head"), created_image(), None),
            (s("db#accounts"), s("00000000000000000001"), committed, None),
            (s("db#accounts"), s("head"), json!({}), None),
        ];
        for (pk, sk, image, expected) in cases {
            let r = record("MODIFY", pk, sk.clone(), image.clone());
            assert_eq!(batch_id_of(&r).as_deref(), expected, "{sk:?} {image}");
        }
    }

    /// What a head record becomes, by event name and image.
    #[test]
    fn head_records_by_event_name_and_image() {
        let publish = |c: &Classified| matches!(c, Classified::Publish(DatabaseEvent::Created(_)));
        let mut bad_state = created_image();
        bad_state["state"] = json!({"S": "paused"});
        let huge = "x".repeat(4 * MAX_REASON_BYTES);
        let mut huge_state = created_image();
        huge_state["state"] = json!({ "S": huge });
        type Check = fn(&Classified) -> bool;
        let cases: [(&str, Value, Check); 8] = [
            ("INSERT", created_image(), |c| {
                matches!(c, Classified::Publish(DatabaseEvent::Created(_)))
            }),
            ("MODIFY", created_image(), |c| {
                matches!(c, Classified::Publish(DatabaseEvent::Created(_)))
            }),
            ("REMOVE", created_image(), |c| {
                *c == Classified::Skip("a tombstone expired (TTL)")
            }),
            // The name is checked before the image: an empty image expired.
            ("REMOVE", json!({}), |c| {
                *c == Classified::Skip("a tombstone expired (TTL)")
            }),
            (
                "UPSERT",
                created_image(),
                |c| matches!(c, Classified::Poison(r) if r.starts_with("unknown event name")),
            ),
            (
                "MODIFY",
                json!({}),
                |c| matches!(c, Classified::Poison(r) if r.contains("not a head item")),
            ),
            ("MODIFY", bad_state, |c| {
                *c == Classified::Poison("not a head item: unknown state \"paused\"".into())
            }),
            ("MODIFY", huge_state, |c| {
                matches!(c, Classified::Poison(r)
                    if r.len() <= MAX_REASON_BYTES && r.starts_with("not a head item"))
            }),
        ];
        for (name, image, check) in cases {
            let classified = classify(&record(name, s("db#accounts"), s("head"), image));
            assert!(check(&classified), "{name}: {classified:?}");
        }
        for name in PUBLISHED_EVENT_NAMES {
            let r = record(name, s("db#accounts"), s("head"), created_image());
            assert!(publish(&classify(&r)), "{name}");
        }
    }
}
