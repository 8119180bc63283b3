//! Keys of the condition index (docs/storage.md, "The condition index"): posting
//! items per subject, type and stream of each commit, ordered by value and
//! then by revision, so that a lookup reads what a selector can match and
//! never the history.
//!
//! Subjects and types are any non-empty strings up to 256 KiB, control
//! characters included, while a sort key holds at most 1024 bytes. So a
//! value's key is its *escaped* form ([`escape`]: U+0001 doubled as
//! U+0001 U+0002), cut at [`MAX_KEY_VALUE_BYTES`] and then followed by a
//! hash of the whole value ([`value_key`]). Escaping keeps
//! [`VALUE_END`] (U+0001 U+0001) out of every escaped value: a posting's
//! sort key is `{value key}{VALUE_END}{first revision}`, and an equality
//! lookup (`begins_with` the value key and [`VALUE_END`]) never reads a
//! longer value that starts the same way. Escaping also maps prefixes to
//! prefixes, character by character, so `starts_with(p)` becomes
//! `begins_with(escape(p))` ([`prefix_key`]).

use sha2::{Digest, Sha256};

/// Ends a value in a posting's sort key; never inside an escaped value.
pub const VALUE_END: &str = "\u{1}\u{1}";
/// What U+0001 becomes inside an escaped value.
const ESCAPED_MARK: &str = "\u{1}\u{2}";
/// Between a cut value and its hash.
const HASH_MARK: &str = "\u{1}\u{3}";
/// The longest escaped value kept whole in a key; longer ones are cut here
/// (at a character and escape boundary) and hashed. With the hash (66
/// bytes), [`VALUE_END`] and a revision (20), a sort key stays under 500
/// bytes, half of DynamoDB's limit.
pub const MAX_KEY_VALUE_BYTES: usize = 400;
/// Subject postings of a database are spread over this many partitions
/// (by the subject's hash), for write throughput: an equality lookup reads
/// one, a prefix lookup all of them.
pub const SUBJECT_SHARDS: u8 = 4;

/// `v` with every U+0001 written as U+0001 U+0002.
pub fn escape(v: &str) -> String {
    v.replace('\u{1}', ESCAPED_MARK)
}

/// The key form of a value: its escaped form when short enough, else the
/// escaped form cut at [`MAX_KEY_VALUE_BYTES`] followed by the value's
/// SHA-256 (`hashed`: the item must then also carry the whole value, and a
/// prefix lookup longer than the cut filters by it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueKey {
    pub key: String,
    pub hashed: bool,
}

pub fn value_key(v: &str) -> ValueKey {
    let escaped = escape(v);
    if escaped.len() <= MAX_KEY_VALUE_BYTES {
        return ValueKey {
            key: escaped,
            hashed: false,
        };
    }
    let mut key = cut(&escaped, MAX_KEY_VALUE_BYTES).to_owned();
    key.push_str(HASH_MARK);
    key.push_str(&hex(&Sha256::digest(v.as_bytes())));
    ValueKey { key, hashed: true }
}

/// What a `starts_with(p)` lookup reads: the sort keys that begin with the
/// returned prefix. `exact` is false when `p` was too long and was cut:
/// the entries found must then be filtered by their whole value.
pub fn prefix_key(p: &str) -> (String, bool) {
    let escaped = escape(p);
    if escaped.len() <= MAX_KEY_VALUE_BYTES {
        (escaped, true)
    } else {
        (cut(&escaped, MAX_KEY_VALUE_BYTES).to_owned(), false)
    }
}

/// The longest prefix of an escaped value within `max` bytes that ends at
/// a character boundary and not between U+0001 and its partner.
fn cut(escaped: &str, max: usize) -> &str {
    let mut end = max.min(escaped.len());
    while !escaped.is_char_boundary(end) {
        end -= 1;
    }
    // An escape is two characters; never keep the first alone.
    if escaped[..end].ends_with('\u{1}') {
        end -= 1;
    }
    &escaped[..end]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Which subject partition holds `subject`'s postings.
pub fn subject_shard(subject: &str) -> u8 {
    Sha256::digest(subject.as_bytes())[0] % SUBJECT_SHARDS
}

/// `ix#{name}#{incarnation}#s{shard}`: subject postings.
pub fn subject_pk(name: &str, incarnation: &str, shard: u8) -> String {
    format!("ix#{name}#{incarnation}#s{shard}")
}

/// `ix#{name}#{incarnation}#t`: type postings.
pub fn type_pk(name: &str, incarnation: &str) -> String {
    format!("ix#{name}#{incarnation}#t")
}

/// `ix#{name}#{incarnation}#r`: stream postings.
pub fn stream_pk(name: &str, incarnation: &str) -> String {
    format!("ix#{name}#{incarnation}#r")
}

/// `ix#{name}#{incarnation}#dt`: the distinct types, for prefix lookups.
pub fn type_dictionary_pk(name: &str, incarnation: &str) -> String {
    format!("ix#{name}#{incarnation}#dt")
}

/// `ix#{name}#{incarnation}#dr`: the distinct streams, for prefix lookups.
pub fn stream_dictionary_pk(name: &str, incarnation: &str) -> String {
    format!("ix#{name}#{incarnation}#dr")
}

/// Every index partition of one incarnation (what reclaim deletes).
pub fn index_pks(name: &str, incarnation: &str) -> Vec<String> {
    let mut pks: Vec<String> = (0..SUBJECT_SHARDS)
        .map(|s| subject_pk(name, incarnation, s))
        .collect();
    pks.extend([
        type_pk(name, incarnation),
        stream_pk(name, incarnation),
        type_dictionary_pk(name, incarnation),
        stream_dictionary_pk(name, incarnation),
    ]);
    pks
}

/// A posting's sort key: the value's key, [`VALUE_END`], and the first
/// revision of the entries it holds (zero-padded: string order is
/// numeric order).
pub fn posting_sk(value_key: &str, first_revision: u64) -> String {
    format!("{value_key}{VALUE_END}{first_revision:020}")
}

/// The sort key range of one value's postings with first revisions in
/// `from..=to`, for a `BETWEEN` key condition.
pub fn posting_range(value_key: &str, from: u64, to: u64) -> (String, String) {
    (posting_sk(value_key, from), posting_sk(value_key, to))
}

/// The index watermark of an incarnation sits in its head's partition
/// (`db#{name}`), so one query reads both: `ix#{incarnation}`.
pub fn watermark_sk(incarnation: &str) -> String {
    format!("ix#{incarnation}")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn keys_of_short_and_long_values() {
        let long = "é".repeat(300); // 600 bytes
        let marks = "\u{1}".repeat(300); // 600 bytes escaped
        // (value, key starts with, hashed, key length)
        let table: [(&str, &str, bool, usize); 5] = [
            ("order-1", "order-1", false, 7),
            ("a\u{1}b", "a\u{1}\u{2}b", false, 4),
            ("", "", false, 0),
            (&long, &"é".repeat(200), true, 400 + 2 + 64),
            (&marks, &"\u{1}\u{2}".repeat(200), true, 400 + 2 + 64),
        ];
        for (value, start, hashed, len) in table {
            let k = value_key(value);
            assert!(k.key.starts_with(start), "{value:?}: {:?}", k.key);
            assert_eq!((k.hashed, k.key.len()), (hashed, len), "{value:?}");
            assert!(posting_sk(&k.key, u64::MAX).len() < 1024);
        }
        // A cut never splits a character or an escape.
        let odd = format!("x{}", "\u{1}".repeat(300));
        let k = value_key(&odd);
        assert!(k.key.starts_with('x'));
        assert_eq!(k.key.len(), 399 + 2 + 64, "{:?}", &k.key[..8]);
        let (prefix, exact) = prefix_key(&odd);
        assert!(!exact);
        assert_eq!(prefix.len(), 399);
        assert_eq!(prefix_key("order-"), ("order-".to_owned(), true));
    }

    #[test]
    fn partitions_and_watermark() {
        assert_eq!(subject_pk("db", "0a", 3), "ix#db#0a#s3");
        assert_eq!(type_pk("db", "0a"), "ix#db#0a#t");
        assert_eq!(stream_pk("db", "0a"), "ix#db#0a#r");
        assert_eq!(watermark_sk("0a"), "ix#0a");
        assert_eq!(index_pks("db", "0a").len(), SUBJECT_SHARDS as usize + 4);
        assert_eq!(
            posting_sk("order-1", 42),
            "order-1\u{1}\u{1}00000000000000000042"
        );
        // Not the head item's keys: the publisher's filter passes them by.
        assert!(!crate::keys::is_head_key("db#db", &watermark_sk("0a")));
    }

    fn value() -> impl Strategy<Value = String> {
        // Short and long, with the escape characters over-represented.
        prop::collection::vec(
            prop_oneof![
                Just('\u{1}'),
                Just('\u{2}'),
                Just('\u{3}'),
                Just('a'),
                Just('b'),
                Just('é'),
                any::<char>()
            ],
            0..260,
        )
        .prop_map(|chars| chars.into_iter().collect::<String>())
    }

    proptest! {
        /// Equal keys exactly for equal values.
        #[test]
        fn keys_identify_values(a in value(), b in value()) {
            prop_assert_eq!(value_key(&a) == value_key(&b), a == b);
        }

        /// An equality lookup (begins_with key + VALUE_END) finds a value's
        /// postings and no other value's.
        #[test]
        fn equality_lookups_read_one_value(a in value(), b in value(), r in any::<u64>()) {
            let lookup = format!("{}{VALUE_END}", value_key(&a).key);
            let sk = posting_sk(&value_key(&b).key, r);
            prop_assert_eq!(sk.starts_with(&lookup), a == b);
        }

        /// A prefix lookup finds every value that starts with the prefix;
        /// when exact, only those.
        #[test]
        fn prefix_lookups_read_what_starts_with_the_prefix(
            p in value(), rest in value(), other in value(), r in any::<u64>()
        ) {
            let (prefix, exact) = prefix_key(&p);
            for v in [format!("{p}{rest}"), other] {
                let found = posting_sk(&value_key(&v).key, r).starts_with(&prefix);
                if v.starts_with(&p) {
                    prop_assert!(found, "{:?} not found by {:?}", v, p);
                } else if exact {
                    prop_assert!(!found, "{:?} found by {:?}", v, p);
                }
            }
        }

        /// Within one value, postings sort by first revision.
        #[test]
        fn postings_sort_by_revision(v in value(), a in any::<u64>(), b in any::<u64>()) {
            let k = value_key(&v).key;
            prop_assert_eq!(posting_sk(&k, a).cmp(&posting_sk(&k, b)), a.cmp(&b));
        }
    }
}
