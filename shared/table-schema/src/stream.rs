//! What a record of the table's DynamoDB stream says, read from its keys
//! and images as Lambda hands them over (`serde_dynamo` maps, no Lambda
//! event types): which records are a head item's changes and which
//! database they are about. The stream's two consumers, the publisher and
//! the indexer, recognise head records here, so their event source
//! filters and their second line of defence cannot drift apart.

use std::collections::HashMap;

use serde_dynamo::AttributeValue;

use crate::{HeadError, HeadItem, attribute, keys};

/// A record's keys or image.
pub type Image = HashMap<String, AttributeValue>;

/// The stream event names of a head item's change: a first creation is an
/// `INSERT`, every later change (a creation over a tombstone too) a
/// `MODIFY`. The template's event source filters let exactly these through
/// (tested against `template.yaml`).
pub const HEAD_CHANGE_EVENT_NAMES: [&str; 2] = ["INSERT", "MODIFY"];

/// The event name of a tombstone expiring (TTL): not a database event.
pub const EXPIRED_EVENT_NAME: &str = "REMOVE";

/// A string key attribute (`None` when absent or of another type).
pub fn string_key<'a>(keys: &'a Image, name: &str) -> Option<&'a str> {
    match keys.get(name) {
        Some(AttributeValue::S(value)) => Some(value),
        _ => None,
    }
}

/// The database a record's keys are about (`db#{name}`, any sort key), for
/// logs.
pub fn database_of_keys(keys: &Image) -> Option<&str> {
    string_key(keys, attribute::PK).and_then(keys::database_of_head_pk)
}

/// Whether a record's keys are a head item's.
pub fn is_head_record(keys: &Image) -> bool {
    match (
        string_key(keys, attribute::PK),
        string_key(keys, attribute::SK),
    ) {
        (Some(pk), Some(sk)) => keys::is_head_key(pk, sk),
        _ => false,
    }
}

/// The head item a head record's new image holds, read as storage reads
/// the item itself.
pub fn head_of_image(image: &Image) -> Result<HeadItem, HeadError> {
    HeadItem::from_item(image.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pk: Option<AttributeValue>, sk: Option<AttributeValue>) -> Image {
        let mut keys = Image::new();
        if let Some(pk) = pk {
            keys.insert("pk".into(), pk);
        }
        if let Some(sk) = sk {
            keys.insert("sk".into(), sk);
        }
        keys
    }

    fn s(v: &str) -> Option<AttributeValue> {
        Some(AttributeValue::S(v.into()))
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
            (s("db#accounts"), s("ix#00ff"), false, Some("accounts")),
            (s("ev#accounts#00ff"), s("head"), false, None),
            (s("gc"), s("accounts#00ff"), false, None),
            (s("reply#c-1"), s("reply"), false, None),
            (s("DB#accounts"), s("head"), false, None),
            (s("db#accounts"), s("HEAD"), false, Some("accounts")),
            (None, s("head"), false, None),
            (s("db#accounts"), None, false, Some("accounts")),
            (Some(AttributeValue::N("1".into())), s("head"), false, None),
            (
                s("db#accounts"),
                Some(AttributeValue::B(b"head".to_vec())),
                false,
                Some("accounts"),
            ),
        ] {
            let k = keys(pk.clone(), sk.clone());
            let what = format!("{pk:?} {sk:?}");
            assert_eq!(is_head_record(&k), head, "{what}");
            assert_eq!(database_of_keys(&k), database, "{what}");
        }
    }

    #[test]
    fn a_head_image_reads_as_the_item() {
        let item = HeadItem::new("accounts", "00ff".into(), 1_705_314_600_123);
        let image: Image = serde_dynamo::to_item(&item).unwrap();
        assert_eq!(head_of_image(&image).unwrap(), item);
        let mut broken = image.clone();
        broken.remove(attribute::INCARNATION);
        assert!(head_of_image(&broken).is_err());
    }
}
