//! What a DynamoDB stream record means to the publisher. The keys, the
//! head item and what its image means are the table's schema
//! (`evidentsource-table-schema`), shared with storage, which writes them.

use aws_lambda_events::event::dynamodb::EventRecord;
use evidentsource_database_events::DatabaseEvent;
use evidentsource_domain::{quote, quote::truncate_message};
use evidentsource_table_schema::{HeadItem, attribute, keys};

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

/// The stream event names of a head item's change: a first creation is an
/// `INSERT`, every later change (a creation over a tombstone too) a
/// `MODIFY`. The template's event source filter lets exactly these through
/// (tested against `template.yaml`).
pub const PUBLISHED_EVENT_NAMES: [&str; 2] = ["INSERT", "MODIFY"];

/// The event name of a tombstone expiring (TTL): not a database event.
pub const EXPIRED_EVENT_NAME: &str = "REMOVE";

/// A string key attribute of the record (`Item` derefs to its map: no copy
/// of the keys per record).
fn key<'a>(record: &'a EventRecord, name: &str) -> Option<&'a str> {
    match record.change.keys.get(name) {
        Some(serde_dynamo::AttributeValue::S(value)) => Some(value),
        _ => None,
    }
}

/// The database a record is about, from its key (`db#{name}`), for logs.
pub fn database_of(record: &EventRecord) -> Option<String> {
    key(record, attribute::PK)
        .and_then(keys::database_of_head_pk)
        .map(str::to_owned)
}

fn is_head(record: &EventRecord) -> bool {
    match (key(record, attribute::PK), key(record, attribute::SK)) {
        (Some(pk), Some(sk)) => keys::is_head_key(pk, sk),
        _ => false,
    }
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

    /// Which records are head records, and the database their key names.
    #[test]
    fn head_records_and_their_database_by_key() {
        for (pk, sk, head, database) in [
            (s("db#accounts"), s("head"), true, Some("accounts")),
            (s("db#a#b"), s("head"), true, Some("a#b")),
            (s("db#"), s("head"), true, Some("")),
            (
                s("db#accounts"),
                s("00000000000000000001"),
                false,
                Some("accounts"),
            ),
            (s("ev#accounts#00ff"), s("head"), false, None),
            (
                s("ev#accounts#00ff"),
                s("00000000000000000001"),
                false,
                None,
            ),
            (s("gc"), s("accounts#00ff"), false, None),
            (s("reply#c-1"), s("reply"), false, None),
            (s("DB#accounts"), s("head"), false, None),
            (s("db#accounts"), s("HEAD"), false, Some("accounts")),
            (None, s("head"), false, None),
            (s("db#accounts"), None, false, Some("accounts")),
            (Some(json!({"N": "1"})), s("head"), false, None),
            (
                s("db#accounts"),
                Some(json!({"B": "aGVhZA=="})),
                false,
                Some("accounts"),
            ),
        ] {
            let r = record("INSERT", pk.clone(), sk.clone(), created_image());
            let what = format!("{pk:?} {sk:?}");
            assert_eq!(is_head(&r), head, "{what}");
            assert_eq!(database_of(&r).as_deref(), database, "{what}");
            if !head {
                assert_eq!(classify(&r), Classified::Skip("not a head item"), "{what}");
            }
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
