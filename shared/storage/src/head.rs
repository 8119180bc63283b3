//! The head item: one per database name, the serialization point of every
//! change, and the only item the stream publisher reads.
//!
//! Its new image alone says what happened:
//! - `state = active`, `revision = 0` → the database was created;
//! - `state = active`, `revision > 0` → a transaction committed
//!   (`basis`, `revision`, `batch_id`, `revision_time` give the BatchSummary);
//! - `state = deleted` → the database was deleted (`deleted_at`).

use evidentsource_database_events::DatabaseEvent;
use evidentsource_proto::{BatchSummary, Database};
use serde::{Deserialize, Serialize};

use crate::{keys, timestamp_from_millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadState {
    Active,
    /// A tombstone: the name is free again; the item expires through `ttl`.
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadItem {
    pub pk: String,
    pub sk: String,
    pub name: String,
    pub state: HeadState,
    /// Distinguishes successive databases of the same name; every other item
    /// of the database is keyed by it, so a re-created database never sees
    /// the old one's data.
    pub incarnation: String,
    /// Milliseconds since the epoch (as every time here).
    pub created_at: i64,
    pub basis: u64,
    pub revision: u64,
    pub revision_time: i64,
    /// The last committed batch (absent at revision 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
    /// Expiry (seconds since the epoch) of a tombstone, for DynamoDB TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
}

impl HeadItem {
    pub fn new(name: &str, incarnation: String, now: i64) -> Self {
        HeadItem {
            pk: keys::head_pk(name),
            sk: keys::HEAD_SK.to_owned(),
            name: name.to_owned(),
            state: HeadState::Active,
            incarnation,
            created_at: now,
            basis: 0,
            revision: 0,
            revision_time: now,
            batch_id: None,
            deleted_at: None,
            ttl: None,
        }
    }

    pub fn is_active(&self) -> bool {
        self.state == HeadState::Active
    }

    pub fn database(&self) -> Database {
        Database {
            name: self.name.clone(),
            created_at: Some(timestamp_from_millis(self.created_at)),
            basis: self.basis,
            revision: self.revision,
            revision_timestamp: Some(timestamp_from_millis(self.revision_time)),
        }
    }

    /// The database event this image records (see the module docs), or
    /// why it cannot be read as one.
    pub fn change(&self) -> Result<DatabaseEvent, String> {
        match self.state {
            HeadState::Deleted => Ok(DatabaseEvent::Deleted {
                database: self.name.clone(),
                created_at: timestamp_from_millis(self.created_at),
                deleted_at: timestamp_from_millis(
                    self.deleted_at.ok_or("a deleted head without deleted_at")?,
                ),
            }),
            HeadState::Active if self.revision == 0 => Ok(DatabaseEvent::Created(self.database())),
            HeadState::Active => {
                let event_count = self
                    .revision
                    .checked_sub(self.basis)
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        format!(
                            "basis {} and revision {} make no batch",
                            self.basis, self.revision
                        )
                    })?;
                Ok(DatabaseEvent::Transacted(BatchSummary {
                    id: self
                        .batch_id
                        .clone()
                        .ok_or("a transacted head without batch_id")?,
                    database: self.name.clone(),
                    basis: self.basis,
                    revision: self.revision,
                    event_count,
                    recorded_time: Some(timestamp_from_millis(self.revision_time)),
                }))
            }
        }
    }

    /// Reads a head item from any serde_dynamo item: the SDK's attribute map
    /// or a Lambda stream record's image.
    pub fn from_item<I>(item: I) -> Result<Self, String>
    where
        I: Into<serde_dynamo::Item>,
    {
        serde_dynamo::from_item(item).map_err(|e| format!("not a head item: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;

    #[test]
    fn item_round_trip_and_changes() {
        let mut head = HeadItem::new("accounts", "inc1".into(), 1_705_314_600_123);
        let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(&head).unwrap();
        assert_eq!(item["state"], AttributeValue::S("active".into()));
        assert_eq!(item["revision"], AttributeValue::N("0".into()));
        assert!(!item.contains_key("batch_id"));
        assert_eq!(HeadItem::from_item(item).unwrap(), head);
        assert!(matches!(head.change(), Ok(DatabaseEvent::Created(d)) if d.revision == 0));

        head.basis = 3;
        head.revision = 5;
        head.batch_id = Some("b".into());
        let Ok(DatabaseEvent::Transacted(b)) = head.change() else {
            panic!()
        };
        assert_eq!(
            (b.basis, b.revision, b.event_count, b.id.as_str()),
            (3, 5, 2, "b")
        );

        head.state = HeadState::Deleted;
        head.deleted_at = Some(1_705_314_700_000);
        assert!(matches!(head.change(), Ok(DatabaseEvent::Deleted { .. })));
    }

    #[test]
    fn malformed_images_are_reported() {
        let mut head = HeadItem::new("accounts", "inc1".into(), 0);
        head.revision = 2;
        assert!(head.change().unwrap_err().contains("batch_id"));
        head.basis = 2;
        head.batch_id = Some("b".into());
        assert!(head.change().unwrap_err().contains("make no batch"));
        let not_head: HashMap<String, AttributeValue> =
            [("pk".to_string(), AttributeValue::S("x".into()))].into();
        assert!(HeadItem::from_item(not_head).is_err());
    }
}
