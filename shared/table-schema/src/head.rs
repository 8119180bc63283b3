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

use crate::{attribute, keys, timestamp_from_millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadState {
    Active,
    /// A tombstone: the name is free again; the item expires through `ttl`.
    Deleted,
}

impl HeadState {
    pub const ALL: [HeadState; 2] = [HeadState::Active, HeadState::Deleted];

    /// The value of the `state` attribute (serde writes the same; tested).
    pub fn as_str(self) -> &'static str {
        match self {
            HeadState::Active => "active",
            HeadState::Deleted => "deleted",
        }
    }

    /// The state a `state` attribute holds, if it is one.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

/// Why an item or a stream image is not a head item that records a change.
/// The texts are what the stream publisher logs and sends to its
/// dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("not a head item: missing field `{field}`")]
    Missing { field: &'static str },
    /// The attribute has another DynamoDB type (`expected` is "string" or
    /// "number").
    #[error("not a head item: {field} is not a {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    /// A number that does not fit the field's type.
    #[error("not a head item: {field} = {value:?} is out of range")]
    OutOfRange { field: &'static str, value: String },
    #[error("not a head item: unknown state {0:?}")]
    UnknownState(String),
    /// The item does not deserialize (serde_dynamo's message, which names
    /// the field).
    #[error("not a head item: {0}")]
    Decode(String),
    #[error("a deleted head without {field}", field = attribute::DELETED_AT)]
    DeletedWithoutTime,
    #[error("a transacted head without {field}", field = attribute::BATCH_ID)]
    TransactedWithoutBatch,
    #[error("basis {basis} and revision {revision} make no batch")]
    NoBatch { basis: u64, revision: u64 },
}

impl HeadError {
    /// The attribute at fault, when one is (serde's message names its own).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            HeadError::Missing { field }
            | HeadError::WrongType { field, .. }
            | HeadError::OutOfRange { field, .. } => Some(field),
            HeadError::UnknownState(_) => Some(attribute::STATE),
            HeadError::Decode(_) => None,
            HeadError::DeletedWithoutTime => Some(attribute::DELETED_AT),
            HeadError::TransactedWithoutBatch => Some(attribute::BATCH_ID),
            HeadError::NoBatch { .. } => Some(attribute::REVISION),
        }
    }
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
    /// The recent facts (`rf`): hashes of what the last commits hold, so
    /// that a conditional commit can tell from the head alone that they
    /// cannot match its conditions (storage's `recent.rs`,
    /// docs/storage.md "Recent facts"). Opaque here; absent at creation
    /// and on heads written before it was kept.
    #[serde(default, rename = "rf", skip_serializing_if = "Option::is_none")]
    pub recent: Option<Bytes>,
}

/// A binary attribute (`B`), as serde_dynamo reads and writes one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a binary attribute")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        deserializer.deserialize_byte_buf(Visitor)
    }
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
            recent: None,
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
    pub fn change(&self) -> Result<DatabaseEvent, HeadError> {
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
    ) -> Result<DatabaseEvent, HeadError> {
        let state = image::string(image, attribute::STATE)?;
        let state =
            HeadState::parse(state).ok_or_else(|| HeadError::UnknownState(state.to_owned()))?;
        HeadFields {
            name: image::string(image, attribute::NAME)?,
            state,
            created_at: image::number(image, attribute::CREATED_AT)?,
            basis: image::number(image, attribute::BASIS)?,
            revision: image::number(image, attribute::REVISION)?,
            revision_time: image::number(image, attribute::REVISION_TIME)?,
            batch_id: image::optional(image, attribute::BATCH_ID, image::string)?,
            deleted_at: image::optional(image, attribute::DELETED_AT, image::number)?,
        }
        .change()
    }

    /// Reads a head item from any serde_dynamo item: the SDK's attribute map
    /// (with serde_dynamo's SDK feature, as storage has it) or a Lambda
    /// stream record's image.
    pub fn from_item<I>(item: I) -> Result<Self, HeadError>
    where
        I: Into<serde_dynamo::Item>,
    {
        serde_dynamo::from_item(item).map_err(|e| HeadError::Decode(e.to_string()))
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

    fn change(&self) -> Result<DatabaseEvent, HeadError> {
        match self.state {
            HeadState::Deleted => Ok(DatabaseEvent::Deleted {
                database: self.name.to_owned(),
                created_at: timestamp_from_millis(self.created_at),
                deleted_at: timestamp_from_millis(
                    self.deleted_at.ok_or(HeadError::DeletedWithoutTime)?,
                ),
            }),
            HeadState::Active if self.revision == 0 => Ok(DatabaseEvent::Created(self.database())),
            HeadState::Active => {
                let event_count = self
                    .revision
                    .checked_sub(self.basis)
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .ok_or(HeadError::NoBatch {
                        basis: self.basis,
                        revision: self.revision,
                    })?;
                Ok(DatabaseEvent::Transacted(BatchSummary {
                    id: self
                        .batch_id
                        .ok_or(HeadError::TransactedWithoutBatch)?
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

    use super::HeadError;

    type Image = HashMap<String, AttributeValue>;

    pub fn string<'a>(image: &'a Image, field: &'static str) -> Result<&'a str, HeadError> {
        match image.get(field) {
            Some(AttributeValue::S(s)) => Ok(s),
            Some(_) => Err(HeadError::WrongType {
                field,
                expected: "string",
            }),
            None => Err(HeadError::Missing { field }),
        }
    }

    pub fn number<T: FromStr>(image: &Image, field: &'static str) -> Result<T, HeadError> {
        match image.get(field) {
            Some(AttributeValue::N(n)) => n.parse().map_err(|_| HeadError::OutOfRange {
                field,
                value: n.clone(),
            }),
            Some(_) => Err(HeadError::WrongType {
                field,
                expected: "number",
            }),
            None => Err(HeadError::Missing { field }),
        }
    }

    pub fn optional<'a, T>(
        image: &'a Image,
        field: &'static str,
        read: impl Fn(&'a Image, &'static str) -> Result<T, HeadError>,
    ) -> Result<Option<T>, HeadError> {
        match image.get(field) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(_) => read(image, field).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_dynamo::AttributeValue;

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
        assert!(head.change().unwrap_err().to_string().contains("batch_id"));
        head.basis = 2;
        head.batch_id = Some("b".into());
        assert!(
            head.change()
                .unwrap_err()
                .to_string()
                .contains("make no batch")
        );
        let not_head: HashMap<String, AttributeValue> =
            [("pk".to_string(), AttributeValue::S("x".into()))].into();
        assert!(HeadItem::from_item(not_head).is_err());
    }

    /// The stream path and the serde path read an image the same way.
    fn both_readings(
        image: &serde_dynamo::Item,
    ) -> (
        Result<DatabaseEvent, HeadError>,
        Result<DatabaseEvent, HeadError>,
    ) {
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
                recent: None,
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

    /// The attribute names are the serialized field names, and the states'
    /// wire strings are what serde writes.
    #[test]
    fn schema_constants_are_what_serde_writes() {
        let mut head = HeadItem::new("accounts", "inc1".into(), 0);
        head.batch_id = Some("b".into());
        head.deleted_at = Some(1);
        head.ttl = Some(2);
        head.recent = Some(Bytes(vec![1, 2]));
        let mut written: Vec<String> = image_of(&head).keys().cloned().collect();
        let mut names: Vec<String> = attribute::HEAD.iter().map(|n| n.to_string()).collect();
        written.sort();
        names.sort();
        assert_eq!(written, names);
        let item = image_of(&HeadItem::new("accounts", "inc1".into(), 0));
        assert_eq!(
            item[attribute::PK],
            AttributeValue::S(keys::head_pk("accounts"))
        );
        assert_eq!(item[attribute::SK], AttributeValue::S(keys::HEAD_SK.into()));
        for state in HeadState::ALL {
            head.state = state;
            assert_eq!(
                image_of(&head)[attribute::STATE],
                AttributeValue::S(state.as_str().into())
            );
            assert_eq!(HeadState::parse(state.as_str()), Some(state));
        }
        assert_eq!(HeadState::parse("Active"), None);
        // The recent facts are a binary attribute, and read back as such.
        let mut head = HeadItem::new("accounts", "inc1".into(), 0);
        head.recent = Some(Bytes(vec![0, 1, 255]));
        let image = image_of(&head);
        assert_eq!(image[attribute::RECENT], AttributeValue::B(vec![0, 1, 255]));
        assert_eq!(HeadItem::from_item(image).unwrap(), head);
    }

    /// The texts the publisher logs and sends to its dead-letter queue.
    #[test]
    fn errors_name_the_field_and_the_problem() {
        for (error, field, text) in [
            (
                HeadError::Missing { field: "name" },
                Some("name"),
                "not a head item: missing field `name`",
            ),
            (
                HeadError::WrongType {
                    field: "revision",
                    expected: "number",
                },
                Some("revision"),
                "not a head item: revision is not a number",
            ),
            (
                HeadError::OutOfRange {
                    field: "revision",
                    value: "-1".into(),
                },
                Some("revision"),
                "not a head item: revision = \"-1\" is out of range",
            ),
            (
                HeadError::UnknownState("paused".into()),
                Some("state"),
                "not a head item: unknown state \"paused\"",
            ),
            (
                HeadError::Decode("missing field `name`".into()),
                None,
                "not a head item: missing field `name`",
            ),
            (
                HeadError::DeletedWithoutTime,
                Some("deleted_at"),
                "a deleted head without deleted_at",
            ),
            (
                HeadError::TransactedWithoutBatch,
                Some("batch_id"),
                "a transacted head without batch_id",
            ),
            (
                HeadError::NoBatch {
                    basis: 2,
                    revision: 2,
                },
                Some("revision"),
                "basis 2 and revision 2 make no batch",
            ),
        ] {
            assert_eq!(error.to_string(), text);
            assert_eq!(error.field(), field, "{text}");
        }
    }

    /// Reading in place, each malformed attribute is the one named.
    #[test]
    fn image_errors_name_the_attribute() {
        use serde_dynamo::AttributeValue as V;
        let mut head = HeadItem::new("accounts", "inc1".into(), 0);
        head.basis = 2;
        head.revision = 5;
        head.batch_id = Some("b".into());
        for (field, value) in [
            (attribute::NAME, None),
            (attribute::NAME, Some(V::N("1".into()))),
            (attribute::STATE, Some(V::S("paused".into()))),
            (attribute::STATE, Some(V::N("1".into()))),
            (attribute::REVISION, Some(V::N("-1".into()))),
            (attribute::REVISION, Some(V::S("5".into()))),
            (attribute::CREATED_AT, None),
            (attribute::REVISION_TIME, Some(V::N("1.5".into()))),
            (attribute::BATCH_ID, Some(V::N("7".into()))),
            (attribute::BATCH_ID, None),
        ] {
            let mut image: HashMap<String, V> = image_of(&head).into();
            match value.clone() {
                Some(v) => image.insert(field.into(), v),
                None => image.remove(field),
            };
            let error = HeadItem::change_of_image(&image).unwrap_err();
            assert_eq!(error.field(), Some(field), "{field} = {value:?}: {error}");
        }
    }
}
