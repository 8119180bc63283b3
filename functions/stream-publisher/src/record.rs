//! What a DynamoDB stream record means to the publisher.

use aws_lambda_events::event::dynamodb::EventRecord;
use evidentsource_database_events::DatabaseEvent;
use evidentsource_domain::{quote, quote::truncate_message};
use evidentsource_storage::HeadItem;

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

/// The database a record is about, from its key (`db#{name}`), for logs.
pub fn database_of(record: &EventRecord) -> Option<String> {
    // `Item` derefs to its map: no copy of the keys per record.
    match record.change.keys.get("pk") {
        Some(serde_dynamo::AttributeValue::S(pk)) => pk.strip_prefix("db#").map(str::to_owned),
        _ => None,
    }
}

fn is_head(record: &EventRecord) -> bool {
    let keys = &record.change.keys;
    matches!(keys.get("sk"), Some(serde_dynamo::AttributeValue::S(sk)) if sk == "head")
        && matches!(keys.get("pk"), Some(serde_dynamo::AttributeValue::S(pk)) if pk.starts_with("db#"))
}

pub fn classify(record: &EventRecord) -> Classified {
    if !is_head(record) {
        return Classified::Skip("not a head item");
    }
    match record.event_name.as_str() {
        "INSERT" | "MODIFY" => {}
        "REMOVE" => return Classified::Skip("a tombstone expired (TTL)"),
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
