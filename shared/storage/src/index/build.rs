//! What the index holds for one chunk (pure): the posting pieces of each
//! subject, type and stream among its events, under their keys, and the
//! types and streams the dictionaries list (for prefix lookups).
//!
//! Pieces never span two chunks (so never two commits: every commit
//! boundary is a chunk boundary) and are cut the same way every time
//! ([`super::posting::pieces`]): indexing a chunk again writes the same
//! items under the same keys, so an indexer may repeat any part of its
//! work. And a lookup bounded at a commit boundary (a basis, a watermark)
//! finds every piece wholly on one side of it.

use std::collections::{BTreeMap, BTreeSet};

use evidentsource_domain::OwnedFacts;
use evidentsource_table_schema::index as keys;

use super::posting::{Fact, IndexedEvent, pieces};

/// One event of a chunk: its revision, the chunk's first revision, and
/// its facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedEvent {
    pub revision: u64,
    pub chunk_first: u64,
    pub facts: OwnedFacts,
}

/// An index item to put: its keys and its piece's encoding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PostingItem {
    pub pk: String,
    pub sk: String,
    pub piece: Vec<u8>,
}

/// A dictionary item to put (its sort key is the value's key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DictionaryItem {
    pub pk: String,
    pub sk: String,
}

/// The index items of one chunk of database `name` (`incarnation`):
/// `events` are the chunk's events in revision order.
pub fn chunk_items(
    name: &str,
    incarnation: &str,
    events: &[CommittedEvent],
) -> (Vec<PostingItem>, Vec<DictionaryItem>) {
    let indexed: Vec<IndexedEvent> = events
        .iter()
        .map(|e| IndexedEvent {
            revision: e.revision,
            chunk_first: e.chunk_first,
            stream: Fact::of(&e.facts.stream),
            subject: e.facts.subject.as_deref().map(Fact::of),
            event_type: Fact::of(&e.facts.event_type),
        })
        .collect();
    // Per value, its events in revision order (BTreeMap: a fixed item
    // order, which tests and retries can rely on).
    let mut by_subject: BTreeMap<&str, Vec<IndexedEvent>> = BTreeMap::new();
    let mut by_type: BTreeMap<&str, Vec<IndexedEvent>> = BTreeMap::new();
    let mut by_stream: BTreeMap<&str, Vec<IndexedEvent>> = BTreeMap::new();
    for (e, i) in events.iter().zip(&indexed) {
        if let Some(subject) = &e.facts.subject {
            by_subject.entry(subject).or_default().push(i.clone());
        }
        by_type
            .entry(&e.facts.event_type)
            .or_default()
            .push(i.clone());
        by_stream
            .entry(&e.facts.stream)
            .or_default()
            .push(i.clone());
    }
    let mut postings = Vec::new();
    let mut put = |pk: String, value: &str, events: &[IndexedEvent]| {
        let key = keys::value_key(value).key;
        for piece in pieces(events) {
            postings.push(PostingItem {
                pk: pk.clone(),
                sk: keys::posting_sk(&key, piece.first),
                piece: piece.bytes,
            });
        }
    };
    for (subject, events) in &by_subject {
        let shard = keys::subject_shard(subject);
        put(keys::subject_pk(name, incarnation, shard), subject, events);
    }
    for (ty, events) in &by_type {
        put(keys::type_pk(name, incarnation), ty, events);
    }
    for (stream, events) in &by_stream {
        put(keys::stream_pk(name, incarnation), stream, events);
    }
    let types: BTreeSet<String> = by_type.keys().map(|t| keys::value_key(t).key).collect();
    let streams: BTreeSet<String> = by_stream.keys().map(|s| keys::value_key(s).key).collect();
    let dictionary = types
        .into_iter()
        .map(|sk| DictionaryItem {
            pk: keys::type_dictionary_pk(name, incarnation),
            sk,
        })
        .chain(streams.into_iter().map(|sk| DictionaryItem {
            pk: keys::stream_dictionary_pk(name, incarnation),
            sk,
        }))
        .collect();
    (postings, dictionary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::posting::decode;

    fn event(revision: u64, stream: &str, subject: Option<&str>, ty: &str) -> CommittedEvent {
        CommittedEvent {
            revision,
            chunk_first: 11,
            facts: OwnedFacts {
                stream: stream.into(),
                subject: subject.map(str::to_owned),
                event_type: ty.into(),
            },
        }
    }

    #[test]
    fn one_posting_per_value_and_dimension() {
        let events = [
            event(11, "orders", Some("o-1"), "placed"),
            event(12, "orders", Some("o-2"), "placed"),
            event(13, "payments", Some("o-1"), "paid"),
            event(14, "orders", None, "audited"),
        ];
        let (postings, dictionary) = chunk_items("shop", "0a", &events);
        // (pk, value, revisions)
        let expected: Vec<(String, &str, Vec<u64>)> = vec![
            (
                keys::subject_pk("shop", "0a", keys::subject_shard("o-1")),
                "o-1",
                vec![11, 13],
            ),
            (
                keys::subject_pk("shop", "0a", keys::subject_shard("o-2")),
                "o-2",
                vec![12],
            ),
            (keys::type_pk("shop", "0a"), "audited", vec![14]),
            (keys::type_pk("shop", "0a"), "paid", vec![13]),
            (keys::type_pk("shop", "0a"), "placed", vec![11, 12]),
            (keys::stream_pk("shop", "0a"), "orders", vec![11, 12, 14]),
            (keys::stream_pk("shop", "0a"), "payments", vec![13]),
        ];
        assert_eq!(postings.len(), expected.len());
        for (item, (pk, value, revisions)) in postings.iter().zip(&expected) {
            assert_eq!(&item.pk, pk, "{value}");
            assert_eq!(item.sk, keys::posting_sk(value, revisions[0]));
            let read = decode(revisions[0], &item.piece).unwrap();
            let read: Vec<u64> = read.iter().map(|e| e.revision).collect();
            assert_eq!(&read, revisions, "{value}");
        }
        let listed: Vec<(&str, &str)> = dictionary
            .iter()
            .map(|d| (d.pk.as_str(), d.sk.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                ("ix#shop#0a#dt", "audited"),
                ("ix#shop#0a#dt", "paid"),
                ("ix#shop#0a#dt", "placed"),
                ("ix#shop#0a#dr", "orders"),
                ("ix#shop#0a#dr", "payments"),
            ]
        );
        // The same chunk indexed again: the same items.
        assert_eq!(chunk_items("shop", "0a", &events), (postings, dictionary));
        assert_eq!(chunk_items("shop", "0a", &[]), (vec![], vec![]));
    }
}
