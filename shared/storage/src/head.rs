//! The head item: one per database name, the serialization point of every
//! change, and the only item the stream publisher reads.
//!
//! Its new image alone says what happened:
//! - `state = active`, `revision = 0` → the database was created;
//! - `state = active`, `revision > 0` → a transaction committed
//!   (`basis`, `revision`, `batch_id`, `revision_time` give the BatchSummary);
//! - `state = deleted` → the database was deleted (`deleted_at`).

use std::collections::HashMap;

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
        self.fields().database()
    }

    /// The database event this image records (see the module docs), or
    /// why it cannot be read as one.
    pub fn change(&self) -> Result<DatabaseEvent, String> {
        self.fields().change()
    }

    fn fields(&self) -> HeadFields<'_> {
        HeadFields {
            name: &self.name,
            state: self.state,
            created_at: self.created_at,
            basis: self.basis,
            revision: self.revision,
            revision_time: self.revision_time,
            batch_id: self.batch_id.as_deref(),
            deleted_at: self.deleted_at,
        }
    }

    /// The database event a stream record's new image records, read in place:
    /// the publisher's per-record path, so only the fields the event needs
    /// are looked up and nothing else is copied. Same meaning, and same
    /// reading of each attribute, as `from_item(image)?.change()` (tested).
    pub fn change_of_image(
        image: &HashMap<String, serde_dynamo::AttributeValue>,
    ) -> Result<DatabaseEvent, String> {
        let state = match image::string(image, "state")? {
            "active" => HeadState::Active,
            "deleted" => HeadState::Deleted,
            other => return Err(format!("not a head item: unknown state {other:?}")),
        };
        HeadFields {
            name: image::string(image, "name")?,
            state,
            created_at: image::number(image, "created_at")?,
            basis: image::number(image, "basis")?,
            revision: image::number(image, "revision")?,
            revision_time: image::number(image, "revision_time")?,
            batch_id: image::optional(image, "batch_id", image::string)?,
            deleted_at: image::optional(image, "deleted_at", image::number)?,
        }
        .change()
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

/// What the event of a head image is made of, borrowed from a `HeadItem` or
/// straight from a stream image.
struct HeadFields<'a> {
    name: &'a str,
    state: HeadState,
    created_at: i64,
    basis: u64,
    revision: u64,
    revision_time: i64,
    batch_id: Option<&'a str>,
    deleted_at: Option<i64>,
}

impl HeadFields<'_> {
    fn database(&self) -> Database {
        Database {
            name: self.name.to_owned(),
            created_at: Some(timestamp_from_millis(self.created_at)),
            basis: self.basis,
            revision: self.revision,
            revision_timestamp: Some(timestamp_from_millis(self.revision_time)),
        }
    }

    fn change(&self) -> Result<DatabaseEvent, String> {
        match self.state {
            HeadState::Deleted => Ok(DatabaseEvent::Deleted {
                database: self.name.to_owned(),
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
                        .ok_or("a transacted head without batch_id")?
                        .to_owned(),
                    database: self.name.to_owned(),
                    basis: self.basis,
                    revision: self.revision,
                    event_count,
                    recorded_time: Some(timestamp_from_millis(self.revision_time)),
                }))
            }
        }
    }
}

/// Attribute readers for stream images, with serde_dynamo's reading of
/// each type (`S` for strings, `N` parsed as the field's type, `NULL` or
/// absent for an empty option).
mod image {
    use std::{collections::HashMap, str::FromStr};

    use serde_dynamo::AttributeValue;

    type Image = HashMap<String, AttributeValue>;

    pub fn string<'a>(image: &'a Image, field: &str) -> Result<&'a str, String> {
        match image.get(field) {
            Some(AttributeValue::S(s)) => Ok(s),
            Some(_) => Err(format!("not a head item: {field} is not a string")),
            None => Err(format!("not a head item: missing field `{field}`")),
        }
    }

    pub fn number<T: FromStr>(image: &Image, field: &str) -> Result<T, String> {
        match image.get(field) {
            Some(AttributeValue::N(n)) => n
                .parse()
                .map_err(|_| format!("not a head item: {field} = {n:?} is out of range")),
            Some(_) => Err(format!("not a head item: {field} is not a number")),
            None => Err(format!("not a head item: missing field `{field}`")),
        }
    }

    pub fn optional<'a, T>(
        image: &'a Image,
        field: &str,
        read: impl Fn(&'a Image, &str) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        match image.get(field) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(_) => read(image, field).map(Some),
        }
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

    /// The stream path and the serde path read an image the same way.
    fn both_readings(
        image: &serde_dynamo::Item,
    ) -> (Result<DatabaseEvent, String>, Result<DatabaseEvent, String>) {
        (
            HeadItem::change_of_image(image),
            HeadItem::from_item(image.clone()).and_then(|h| h.change()),
        )
    }

    fn image_of(head: &HeadItem) -> serde_dynamo::Item {
        serde_dynamo::to_item(head).unwrap()
    }

    proptest::proptest! {
        #[test]
        fn reading_in_place_equals_deserializing(
            deleted in proptest::bool::ANY,
            created_at in proptest::num::i64::ANY,
            basis in 0u64..1 << 40,
            count in 0u64..1 << 33,
            revision_time in proptest::num::i64::ANY,
            batch_id in proptest::option::of("[a-z0-9-]{0,12}"),
            deleted_at in proptest::option::of(proptest::num::i64::ANY),
            ttl in proptest::option::of(proptest::num::i64::ANY),
        ) {
            let head = HeadItem {
                pk: "db#accounts".into(),
                sk: "head".into(),
                name: "accounts".into(),
                state: if deleted { HeadState::Deleted } else { HeadState::Active },
                incarnation: "inc1".into(),
                created_at,
                basis,
                revision: basis + count,
                revision_time,
                batch_id,
                deleted_at,
                ttl,
            };
            let (in_place, deserialized) = both_readings(&image_of(&head));
            proptest::prop_assert_eq!(in_place, deserialized);
        }
    }

    #[test]
    fn malformed_images_fail_both_ways() {
        use serde_dynamo::AttributeValue as V;
        let mut head = HeadItem::new("accounts", "inc1".into(), 1_705_314_600_123);
        head.basis = 2;
        head.revision = 5;
        head.batch_id = Some("b".into());
        let good = image_of(&head);
        let changed = |field: &str, value: Option<V>| {
            let mut image: HashMap<String, V> = good.clone().into();
            match value {
                Some(v) => image.insert(field.into(), v),
                None => image.remove(field),
            };
            serde_dynamo::Item::from(image)
        };
        for (field, value) in [
            ("name", None),
            ("name", Some(V::N("1".into()))),
            ("state", Some(V::S("paused".into()))),
            ("state", None),
            ("revision", Some(V::N("-1".into()))),
            ("revision", Some(V::N("x".into()))),
            ("revision", Some(V::S("5".into()))),
            ("basis", None),
            ("created_at", None),
            ("revision_time", Some(V::N("1.5".into()))),
            ("batch_id", Some(V::N("7".into()))),
            ("batch_id", None),
        ] {
            let (in_place, deserialized) = both_readings(&changed(field, value.clone()));
            assert!(in_place.is_err(), "{field} = {value:?} read in place");
            assert!(deserialized.is_err(), "{field} = {value:?} deserialized");
        }
        // NULL is an empty option, and unknown attributes are ignored, both ways.
        for (field, value) in [
            ("deleted_at", Some(V::Null(true))),
            ("extra", Some(V::S("x".into()))),
        ] {
            let (in_place, deserialized) = both_readings(&changed(field, value));
            assert_eq!(in_place, deserialized);
            assert!(in_place.is_ok(), "{field}");
        }
    }
}
