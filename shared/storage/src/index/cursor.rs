//! A query's cursors over the index (docs/storage.md, "Reading by selector"): one per
//! range of the selector's cover, each giving the range's entries in
//! revision order from `from` up to a top revision, lazily, a few items
//! per read, so a page holds what it needs and never the history.
//!
//! A value's postings (a subject, a type, a stream) are in revision order
//! under their key. A type or stream prefix becomes one cursor per value
//! its dictionary lists. A subject prefix is not in revision order (its
//! postings are ordered by subject first) and has no dictionary: its
//! cursor collects the first `keep` candidates by revision in one pass
//! over the prefix (memory bounded by `keep`), and says up to which
//! revision that is complete.

use std::collections::{BTreeMap, VecDeque};

use evidentsource_domain::Selector;
use evidentsource_table_schema::index as index_keys;

use super::{
    plan::{Dimension, Range, cover},
    posting::{IndexedEvent, matches},
    read::{Bounds, IndexedHead, piece_events},
};
use crate::{Store, StoreError, attr::get_s, attribute, batch::Item};

/// Posting items read per query of one value: small pages keep the merge's
/// memory small however many values a prefix names.
const ITEMS_PER_READ: i32 = 8;
/// Most cursors one page opens; a cover that names more values is answered
/// by a filtered chunk scan instead (the caller's fallback).
pub const MAX_CURSORS: usize = 64;

/// Where one cursor reads.
enum Source {
    /// One value's postings, ascending, `ITEMS_PER_READ` items at a time.
    Value {
        pk: String,
        low: String,
        high: String,
        start: Option<Item>,
        done: bool,
    },
    /// Collected up front (a subject prefix): the buffer is all there is.
    Collected,
}

/// One range's entries with revisions in `from..=top`, in revision order.
pub(crate) struct Cursor {
    source: Source,
    buffer: VecDeque<IndexedEvent>,
}

/// The cursors of a cover, and the revision up to which together they are
/// complete (the top, or less when a subject prefix kept only its first
/// candidates).
pub(crate) struct Cursors {
    pub cursors: Vec<Cursor>,
    pub complete_through: u64,
}

impl Cursor {
    /// The revision of the next entry, reading on when the buffer is empty.
    pub async fn peek(
        &mut self,
        store: &Store,
        from: u64,
        top: u64,
    ) -> Result<Option<u64>, StoreError> {
        while self.buffer.is_empty() {
            let Source::Value {
                pk,
                low,
                high,
                start,
                done,
            } = &mut self.source
            else {
                return Ok(None);
            };
            if *done {
                return Ok(None);
            }
            let page = store
                .query_postings_page(
                    pk,
                    Bounds::Between(low, high),
                    true,
                    start.take(),
                    Some(ITEMS_PER_READ),
                )
                .await?;
            for item in page.items() {
                for e in piece_events(item)? {
                    if (from..=top).contains(&e.revision) {
                        self.buffer.push_back(e);
                    }
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => *start = Some(k),
                _ => *done = true,
            }
        }
        Ok(self.buffer.front().map(|e| e.revision))
    }

    pub fn pop(&mut self) -> Option<IndexedEvent> {
        self.buffer.pop_front()
    }
}

impl Store {
    /// The cursors over `selector`'s cover for revisions `from..=top`
    /// (`top` at or below the watermark); `None` when the cover names more
    /// than [`MAX_CURSORS`] values. A subject prefix keeps its first `keep`
    /// candidates.
    pub(crate) async fn open_cursors(
        &self,
        at: &IndexedHead,
        selector: &Selector,
        from: u64,
        top: u64,
        keep: usize,
    ) -> Result<Option<Cursors>, StoreError> {
        let (name, inc) = (&at.head.name, &at.head.incarnation);
        let mut cursors = Vec::new();
        let mut complete_through = top;
        for range in cover(selector) {
            match range {
                Range::Equals(dimension, value) => {
                    let pk = match dimension {
                        Dimension::Subject => {
                            index_keys::subject_pk(name, inc, index_keys::subject_shard(&value))
                        }
                        Dimension::Type => index_keys::type_pk(name, inc),
                        Dimension::Stream => index_keys::stream_pk(name, inc),
                    };
                    let key = index_keys::value_key(&value).key;
                    cursors.push(self.value_cursor(pk, &key, from, top).await?);
                }
                Range::StartsWith(Dimension::Subject, prefix) => {
                    let (cursor, through) = self
                        .subject_prefix_cursor(at, selector, &prefix, from, top, keep)
                        .await?;
                    cursors.push(cursor);
                    complete_through = complete_through.min(through);
                }
                Range::StartsWith(dimension, prefix) => {
                    let (dictionary, postings) = match dimension {
                        Dimension::Type => (
                            index_keys::type_dictionary_pk(name, inc),
                            index_keys::type_pk(name, inc),
                        ),
                        _ => (
                            index_keys::stream_dictionary_pk(name, inc),
                            index_keys::stream_pk(name, inc),
                        ),
                    };
                    let (prefix, _) = index_keys::prefix_key(&prefix);
                    let mut start = None;
                    loop {
                        let page = self
                            .query_postings(&dictionary, Bounds::Prefix(&prefix), true, start)
                            .await?;
                        for item in page.items() {
                            if cursors.len() >= MAX_CURSORS {
                                return Ok(None);
                            }
                            let key = get_s(item, attribute::SK)?;
                            cursors
                                .push(self.value_cursor(postings.clone(), &key, from, top).await?);
                        }
                        match page.last_evaluated_key {
                            Some(k) if !k.is_empty() => start = Some(k),
                            _ => break,
                        }
                    }
                }
            }
            if cursors.len() > MAX_CURSORS {
                return Ok(None);
            }
        }
        Ok(Some(Cursors {
            cursors,
            complete_through,
        }))
    }

    /// A cursor over one value's postings from the piece holding `from`.
    async fn value_cursor(
        &self,
        pk: String,
        key: &str,
        from: u64,
        top: u64,
    ) -> Result<Cursor, StoreError> {
        // A piece's key has its first revision; the piece holding `from`
        // may start before it (a piece lies within one commit).
        let mut low = index_keys::posting_sk(key, from);
        if from > 1 {
            let (a, b) = index_keys::posting_range(key, 0, from);
            let before = self
                .query_postings_page(&pk, Bounds::Between(&a, &b), false, None, Some(1))
                .await?;
            if let Some(item) = before.items().first() {
                low = get_s(item, attribute::SK)?;
            }
        }
        Ok(Cursor {
            source: Source::Value {
                pk,
                low,
                high: index_keys::posting_sk(key, top),
                start: None,
                done: false,
            },
            buffer: VecDeque::new(),
        })
    }

    /// The first `keep` candidates by revision in `from..=top` under a
    /// subject prefix (every shard, one pass), and the revision up to which
    /// they are every candidate: `top`, or the last kept when some were
    /// left out. A candidate is an entry the selector may match (a known
    /// mismatch is dropped here; the merge decides the rest).
    async fn subject_prefix_cursor(
        &self,
        at: &IndexedHead,
        selector: &Selector,
        prefix: &str,
        from: u64,
        top: u64,
        keep: usize,
    ) -> Result<(Cursor, u64), StoreError> {
        let (name, inc) = (&at.head.name, &at.head.incarnation);
        let (prefix, _) = index_keys::prefix_key(prefix);
        let mut kept: BTreeMap<u64, IndexedEvent> = BTreeMap::new();
        let mut left_out = false;
        for shard in 0..index_keys::SUBJECT_SHARDS {
            let pk = index_keys::subject_pk(name, inc, shard);
            let mut start = None;
            loop {
                let page = self
                    .query_postings(&pk, Bounds::Prefix(&prefix), true, start)
                    .await?;
                for item in page.items() {
                    for e in piece_events(item)? {
                        if !(from..=top).contains(&e.revision)
                            || matches(selector, &e) == Some(false)
                        {
                            continue;
                        }
                        kept.insert(e.revision, e);
                        if kept.len() > keep {
                            kept.pop_last();
                            left_out = true;
                        }
                    }
                }
                match page.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
        }
        let through = match kept.last_key_value() {
            Some((last, _)) if left_out => *last,
            _ => top,
        };
        let cursor = Cursor {
            source: Source::Collected,
            buffer: kept.into_values().collect(),
        };
        Ok((cursor, through))
    }
}
