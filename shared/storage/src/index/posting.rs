//! A posting piece (docs/storage.md, "Items"): the events of one
//! commit that share one value of one dimension (a subject, a type or a
//! stream), each with all three of its facts and where its chunk is, so
//! that a whole selector can be checked on the piece without reading the
//! events. Its key (`evidentsource_table_schema::index`) orders pieces by
//! value and then by first revision.
//!
//! Facts are kept whole up to [`FACT_BYTES`]; a longer one is kept as its
//! first bytes and its SHA-256, which decides equality exactly and
//! `starts_with` up to that length. Beyond it a selector's verdict on the
//! entry is unknown ([`matches`] → `None`) and the caller reads the event.
//!
//! A piece is cut before its encoding passes [`PIECE_BYTES`]; where it is
//! cut depends only on the commit's events, so writing a commit's pieces
//! again writes the same items under the same keys.

use evidentsource_domain::Selector;
use prost::Message;
use sha2::{Digest, Sha256};

/// Longest fact kept whole in a piece.
pub const FACT_BYTES: usize = 256;
/// A piece's encoding stays below this (an item may hold 400 KB; small
/// pieces keep a lookup's read small).
pub const PIECE_BYTES: usize = 64 * 1024;

/// A fact as the index keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fact {
    /// The whole value, or its first bytes (at most [`FACT_BYTES`], cut at
    /// a character boundary) when `hash` is set.
    pub text: String,
    /// SHA-256 of the whole value, when `text` is cut.
    pub hash: Option<[u8; 32]>,
}

impl Fact {
    pub fn of(value: &str) -> Fact {
        if value.len() <= FACT_BYTES {
            return Fact {
                text: value.to_owned(),
                hash: None,
            };
        }
        let mut end = FACT_BYTES;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        Fact {
            text: value[..end].to_owned(),
            hash: Some(Sha256::digest(value.as_bytes()).into()),
        }
    }

    /// Whether the value is `v`: always known.
    fn equals(&self, v: &str) -> bool {
        match &self.hash {
            None => self.text == v,
            Some(h) => v.len() > FACT_BYTES && *h == <[u8; 32]>::from(Sha256::digest(v.as_bytes())),
        }
    }

    /// Whether the value starts with `p`: unknown when `p` is longer than
    /// what is kept of a cut value (and agrees with it so far).
    fn starts_with(&self, p: &str) -> Option<bool> {
        match &self.hash {
            None => Some(self.text.starts_with(p)),
            Some(_) if p.len() <= self.text.len() => Some(self.text.starts_with(p)),
            Some(_) if !p.starts_with(self.text.as_str()) => Some(false),
            Some(_) => None,
        }
    }
}

/// One event as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedEvent {
    pub revision: u64,
    /// The first revision of the chunk that holds the event.
    pub chunk_first: u64,
    pub stream: Fact,
    pub subject: Option<Fact>,
    pub event_type: Fact,
}

/// Whether `selector` matches `event`; `None` when a cut fact leaves it
/// open (read the event to decide).
pub fn matches(selector: &Selector, event: &IndexedEvent) -> Option<bool> {
    match selector {
        Selector::StreamEquals(s) => Some(event.stream.equals(s)),
        Selector::StreamStartsWith(p) => event.stream.starts_with(p),
        Selector::SubjectEquals(s) => Some(event.subject.as_ref().is_some_and(|f| f.equals(s))),
        Selector::SubjectStartsWith(p) => match &event.subject {
            None => Some(false),
            Some(f) => f.starts_with(p),
        },
        Selector::EventTypeEquals(t) => Some(event.event_type.equals(t)),
        Selector::EventTypeStartsWith(p) => event.event_type.starts_with(p),
        // Three-valued: a known false decides `and`, a known true `or`.
        Selector::And(all) => {
            let mut open = false;
            for s in all {
                match matches(s, event) {
                    Some(false) => return Some(false),
                    None => open = true,
                    Some(true) => {}
                }
            }
            (!open).then_some(true)
        }
        Selector::Or(any) => {
            let mut open = false;
            for s in any {
                match matches(s, event) {
                    Some(true) => return Some(true),
                    None => open = true,
                    Some(false) => {}
                }
            }
            (!open).then_some(false)
        }
    }
}

#[derive(Clone, PartialEq, Message)]
struct StoredFact {
    #[prost(string, tag = "1")]
    text: String,
    /// Empty: `text` is the whole value.
    #[prost(bytes = "vec", tag = "2")]
    hash: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct StoredEntry {
    /// Revision less the piece's first revision.
    #[prost(uint64, tag = "1")]
    revision: u64,
    /// Revision less the first revision of the event's chunk.
    #[prost(uint64, tag = "2")]
    chunk: u64,
    /// Indexes into the piece's facts; `subject` is one more (0: none).
    #[prost(uint32, tag = "3")]
    stream: u32,
    #[prost(uint32, tag = "4")]
    subject: u32,
    #[prost(uint32, tag = "5")]
    event_type: u32,
}

#[derive(Clone, PartialEq, Message)]
struct StoredPiece {
    #[prost(message, repeated, tag = "1")]
    facts: Vec<StoredFact>,
    #[prost(message, repeated, tag = "2")]
    entries: Vec<StoredEntry>,
}

/// A piece ready to write: its first revision (part of its key) and its
/// encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub first: u64,
    pub bytes: Vec<u8>,
}

/// The pieces of one value's events of one commit, in revision order: as
/// few as fit, each below [`PIECE_BYTES`].
pub fn pieces(events: &[IndexedEvent]) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut builder = Builder::default();
    for event in events {
        if !builder.is_empty() && builder.size_with(event) > PIECE_BYTES {
            out.push(builder.finish());
        }
        builder.push(event);
    }
    if !builder.is_empty() {
        out.push(builder.finish());
    }
    out
}

#[derive(Default)]
struct Builder {
    first: u64,
    piece: StoredPiece,
    /// `piece.encoded_len()`, kept as entries are added.
    size: usize,
}

/// What a repeated message field element adds to its message's encoding.
fn field_len(message_len: usize) -> usize {
    1 + prost::encoding::encoded_len_varint(message_len as u64) + message_len
}

impl Builder {
    fn is_empty(&self) -> bool {
        self.piece.entries.is_empty()
    }

    /// The entry for `event`, the facts it adds, and the bytes both add.
    fn plan(&self, event: &IndexedEvent) -> (StoredEntry, Vec<StoredFact>, usize) {
        let first = if self.is_empty() {
            event.revision
        } else {
            self.first
        };
        let mut added: Vec<StoredFact> = Vec::new();
        let mut index = |fact: &Fact| -> u32 {
            let stored = StoredFact {
                text: fact.text.clone(),
                hash: fact.hash.map(|h| h.to_vec()).unwrap_or_default(),
            };
            let known = self.piece.facts.len();
            if let Some(i) = self.piece.facts.iter().position(|f| *f == stored) {
                return i as u32;
            }
            if let Some(i) = added.iter().position(|f| *f == stored) {
                return (known + i) as u32;
            }
            added.push(stored);
            (known + added.len() - 1) as u32
        };
        let entry = StoredEntry {
            revision: event.revision - first,
            chunk: event.revision - event.chunk_first,
            stream: index(&event.stream),
            subject: event.subject.as_ref().map_or(0, |s| index(s) + 1),
            event_type: index(&event.event_type),
        };
        let bytes = field_len(entry.encoded_len())
            + added
                .iter()
                .map(|f| field_len(f.encoded_len()))
                .sum::<usize>();
        (entry, added, bytes)
    }

    /// The encoded size with `event` added.
    fn size_with(&self, event: &IndexedEvent) -> usize {
        self.size + self.plan(event).2
    }

    fn push(&mut self, event: &IndexedEvent) {
        let (entry, added, bytes) = self.plan(event);
        if self.is_empty() {
            self.first = event.revision;
        }
        self.piece.facts.extend(added);
        self.piece.entries.push(entry);
        self.size += bytes;
    }

    fn finish(&mut self) -> Piece {
        let piece = std::mem::take(&mut self.piece);
        debug_assert_eq!(piece.encoded_len(), self.size);
        self.size = 0;
        Piece {
            first: self.first,
            bytes: piece.encode_to_vec(),
        }
    }
}

/// The events of a piece written by [`pieces`], in revision order.
pub fn decode(first: u64, bytes: &[u8]) -> Result<Vec<IndexedEvent>, String> {
    let piece =
        StoredPiece::decode(bytes).map_err(|e| format!("index piece does not decode: {e}"))?;
    let facts: Vec<Fact> = piece
        .facts
        .into_iter()
        .map(|f| {
            let hash = match f.hash.len() {
                0 => None,
                32 => Some(<[u8; 32]>::try_from(f.hash.as_slice()).expect("32 bytes")),
                n => return Err(format!("index piece: a fact hash of {n} bytes")),
            };
            Ok(Fact { text: f.text, hash })
        })
        .collect::<Result<_, String>>()?;
    let fact = |i: u32| -> Result<Fact, String> {
        facts
            .get(i as usize)
            .cloned()
            .ok_or_else(|| format!("index piece: fact {i} of {}", facts.len()))
    };
    piece
        .entries
        .into_iter()
        .map(|e| {
            let revision = first
                .checked_add(e.revision)
                .ok_or("index piece: revision overflows")?;
            Ok(IndexedEvent {
                revision,
                chunk_first: revision
                    .checked_sub(e.chunk)
                    .ok_or("index piece: chunk after its event")?,
                stream: fact(e.stream)?,
                subject: match e.subject {
                    0 => None,
                    i => Some(fact(i - 1)?),
                },
                event_type: fact(e.event_type)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use evidentsource_domain::EventFacts;
    use proptest::prelude::*;

    use super::*;

    fn event(revision: u64, stream: &str, subject: Option<&str>, ty: &str) -> IndexedEvent {
        IndexedEvent {
            revision,
            chunk_first: revision.saturating_sub(3).max(1),
            stream: Fact::of(stream),
            subject: subject.map(Fact::of),
            event_type: Fact::of(ty),
        }
    }

    #[test]
    fn long_facts_decide_equality_and_short_prefixes() {
        let long = format!("{}-tail", "x".repeat(300));
        let other = format!("{}-else", "x".repeat(300));
        let e = event(7, "orders", Some(&long), "placed");
        let s = |v: &str| Selector::SubjectEquals(v.to_owned());
        let p = |v: &str| Selector::SubjectStartsWith(v.to_owned());
        // (selector, verdict)
        let table = [
            (s(&long), Some(true)),
            (s(&other), Some(false)),
            (s(&long[..FACT_BYTES]), Some(false)),
            (p("xxx"), Some(true)),
            (p(&"x".repeat(FACT_BYTES)), Some(true)),
            (p("y"), Some(false)),
            // Longer than what is kept, and agreeing with it: open.
            (p(&long[..FACT_BYTES + 1]), None),
            (p(&format!("{}y", "x".repeat(FACT_BYTES))), None),
            // Disagreeing within what is kept: known.
            (p(&format!("{}y", "x".repeat(10))), Some(false)),
            // Three-valued and/or.
            (
                Selector::And(vec![
                    p(&long[..FACT_BYTES + 1]),
                    Selector::StreamEquals("x".into()),
                ]),
                Some(false),
            ),
            (
                Selector::And(vec![
                    p(&long[..FACT_BYTES + 1]),
                    Selector::StreamEquals("orders".into()),
                ]),
                None,
            ),
            (
                Selector::Or(vec![
                    p(&long[..FACT_BYTES + 1]),
                    Selector::EventTypeEquals("placed".into()),
                ]),
                Some(true),
            ),
            (
                Selector::Or(vec![
                    p(&long[..FACT_BYTES + 1]),
                    Selector::EventTypeEquals("x".into()),
                ]),
                None,
            ),
            (Selector::SubjectStartsWith(String::new()), Some(true)),
        ];
        for (selector, verdict) in table {
            assert_eq!(matches(&selector, &e), verdict, "{selector:?}");
        }
        let without = event(8, "orders", None, "placed");
        assert_eq!(matches(&p(""), &without), Some(false));
        assert_eq!(matches(&s(""), &without), Some(false));
    }

    #[test]
    fn pieces_stay_small_and_cut_the_same_way_every_time() {
        let events: Vec<IndexedEvent> = (1..=10_000)
            .map(|r| {
                event(
                    r,
                    "orders",
                    Some(&format!("order-{}", r % 7)),
                    "com.example.placed",
                )
            })
            .collect();
        let a = pieces(&events);
        assert!(a.len() > 1, "{}", a.len());
        assert!(a.iter().all(|p| p.bytes.len() <= PIECE_BYTES));
        assert_eq!(a, pieces(&events), "deterministic");
        let mut read = Vec::new();
        for p in &a {
            read.extend(decode(p.first, &p.bytes).unwrap());
        }
        assert_eq!(read, events);
        assert!(decode(1, b"\xff\xff").is_err());
        assert!(pieces(&[]).is_empty());
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ab]{0,3}",
            "[ab]{250,300}",
            proptest::string::string_regex(".{0,20}").unwrap(),
        ]
    }

    fn selector() -> impl Strategy<Value = Selector> {
        crate::index::strategies::selector(text().boxed(), 1..3)
    }

    proptest! {
        /// A known verdict is the selector's verdict on the whole facts,
        /// and short facts always give one.
        #[test]
        fn verdicts_agree_with_the_whole_facts(
            stream in text(), subject in prop::option::of(text()), ty in text(), s in selector()
        ) {
            let facts = EventFacts { stream: &stream, subject: subject.as_deref(), event_type: &ty };
            let e = IndexedEvent {
                revision: 1,
                chunk_first: 1,
                stream: Fact::of(&stream),
                subject: subject.as_deref().map(Fact::of),
                event_type: Fact::of(&ty),
            };
            let verdict = matches(&s, &e);
            if let Some(v) = verdict {
                prop_assert_eq!(v, s.matches(&facts));
            }
            let short = stream.len() <= FACT_BYTES
                && ty.len() <= FACT_BYTES
                && subject.as_ref().is_none_or(|v| v.len() <= FACT_BYTES);
            if short {
                prop_assert!(verdict.is_some());
            }
        }
    }
}
