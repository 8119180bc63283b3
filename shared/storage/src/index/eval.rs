//! Reading the index (docs/storage.md, "Deciding a condition at basis B"): the highest revision
//! of an event matching a selector at or below a basis, from the index
//! below the watermark and the chunks above it, without the history.
//!
//! Why it is exact: the watermark is read before the index, and the
//! indexer moves it only after every item below it is acknowledged, so a
//! strongly consistent read of the index finds every event at or below
//! the watermark; the chunks above it, up to the basis, exist once the
//! head names the basis (they are written in the same transaction). Reads
//! are bounded by the basis, so a commit made meanwhile is never counted;
//! a commit conditioned on the basis fails if one was made.

use evidentsource_domain::{OwnedFacts, Selector};
use evidentsource_proto::cloudevents::CloudEvent;
use evidentsource_table_schema::index as index_keys;
use futures::future::try_join_all;

use super::{
    plan::{Dimension, Range, cover},
    read::{Bounds, IndexedHead, piece_events},
};
use crate::{Store, StoreError, attr::get_s, attribute, head::HeadItem, read::Start};

/// Pieces of one value read per query, newest first: the first match (or
/// the floor) is usually in the first piece, and a page without a limit
/// would read down to the value's first piece.
const VALUE_PAGE: i32 = 8;

/// Index ranges read at once for one evaluation.
const RANGES_IN_FLIGHT: usize = 16;

impl Store {
    /// The highest revision at or below the head's of an event matching
    /// `selector`: the chunks past the watermark, then the index.
    pub async fn highest_matching(
        &self,
        at: &IndexedHead,
        selector: &Selector,
    ) -> Result<Option<u64>, StoreError> {
        let basis = at.head.revision;
        let indexed = at.watermark.min(basis);
        if basis > indexed {
            let found = self
                .highest_in_chunks(&at.head, selector, indexed + 1, basis, Start::Chunk)
                .await?;
            if found.is_some() {
                return Ok(found);
            }
        }
        self.highest_indexed(at, selector, 1, indexed).await
    }

    /// The highest revision in `floor..=top` of an event matching
    /// `selector`, from the index (`top` at or below the watermark the
    /// caller read before calling). `None`: none in that window (there may
    /// be one below `floor`).
    pub(crate) async fn highest_indexed(
        &self,
        at: &IndexedHead,
        selector: &Selector,
        floor: u64,
        top: u64,
    ) -> Result<Option<u64>, StoreError> {
        let floor = floor.max(1);
        if top < floor {
            return Ok(None);
        }
        let ranges = cover(selector);
        let prefixed_subject = ranges
            .iter()
            .any(|r| matches!(r, Range::StartsWith(Dimension::Subject, _)));
        if prefixed_subject && top - floor < self.config.window_scan_events {
            return self
                .highest_in_chunks(&at.head, selector, floor, top, Start::Within)
                .await;
        }
        let mut best = None;
        for group in ranges.chunks(RANGES_IN_FLIGHT) {
            let mut lookups = Vec::with_capacity(group.len());
            for range in group {
                lookups.push(self.highest_in_range(at, range, selector, floor, top));
            }
            for found in try_join_all(lookups).await? {
                best = best.max(found);
            }
        }
        Ok(best)
    }

    /// The highest revision in `from..=to` of an event matching `selector`,
    /// from the chunks, a page at a time.
    pub(crate) async fn highest_in_chunks(
        &self,
        head: &HeadItem,
        selector: &Selector,
        from: u64,
        to: u64,
        start: Start,
    ) -> Result<Option<u64>, StoreError> {
        let mut found = None;
        self.scan_chunks(head, from, to, start, |first, events| {
            for (i, event) in events.iter().enumerate() {
                let revision = first + i as u64;
                if !(from..=to).contains(&revision) {
                    continue;
                }
                if selector.matches(&stored_facts(revision, event)?.as_facts()) {
                    found = Some(revision);
                }
            }
            Ok(())
        })
        .await?;
        Ok(found)
    }

    /// The highest matching revision at or below `top` (a chunk boundary
    /// at or below the watermark) among `range`'s postings.
    async fn highest_in_range(
        &self,
        at: &IndexedHead,
        range: &Range,
        selector: &Selector,
        floor: u64,
        top: u64,
    ) -> Result<Option<u64>, StoreError> {
        let (name, inc) = (&at.head.name, &at.head.incarnation);
        match range {
            Range::Equals(dimension, value) => {
                let pk = match dimension {
                    Dimension::Subject => {
                        index_keys::subject_pk(name, inc, index_keys::subject_shard(value))
                    }
                    Dimension::Type => index_keys::type_pk(name, inc),
                    Dimension::Stream => index_keys::stream_pk(name, inc),
                };
                let key = index_keys::value_key(value).key;
                self.highest_of_value(at, &pk, &key, selector, floor, top)
                    .await
            }
            Range::StartsWith(Dimension::Subject, prefix) => {
                let (prefix, _) = index_keys::prefix_key(prefix);
                let mut best = None;
                for shard in 0..index_keys::SUBJECT_SHARDS {
                    let pk = index_keys::subject_pk(name, inc, shard);
                    let mut start = None;
                    loop {
                        let page = self
                            .query_postings(&pk, Bounds::Prefix(&prefix), true, start)
                            .await?;
                        for item in page.items() {
                            for e in piece_events(item)? {
                                if (floor..=top).contains(&e.revision)
                                    && best.is_none_or(|b| e.revision > b)
                                    && self.is_match(at, selector, &e).await?
                                {
                                    best = Some(e.revision);
                                }
                            }
                        }
                        match page.last_evaluated_key {
                            Some(k) if !k.is_empty() => start = Some(k),
                            _ => break,
                        }
                    }
                }
                Ok(best)
            }
            Range::StartsWith(dimension, prefix) => {
                // Types and streams: the dictionary lists the values.
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
                let (prefix, _) = index_keys::prefix_key(prefix);
                let mut best = None;
                let mut start = None;
                loop {
                    let page = self
                        .query_postings(&dictionary, Bounds::Prefix(&prefix), true, start)
                        .await?;
                    // The page's values side by side, a group at a time.
                    let keys = page
                        .items()
                        .iter()
                        .map(|item| get_s(item, attribute::SK))
                        .collect::<Result<Vec<_>, _>>()?;
                    for group in keys.chunks(RANGES_IN_FLIGHT) {
                        let mut lookups = Vec::with_capacity(group.len());
                        for key in group {
                            lookups.push(
                                self.highest_of_value(at, &postings, key, selector, floor, top),
                            );
                        }
                        for found in try_join_all(lookups).await? {
                            best = best.max(found);
                        }
                    }
                    match page.last_evaluated_key {
                        Some(k) if !k.is_empty() => start = Some(k),
                        _ => break,
                    }
                }
                Ok(best)
            }
        }
    }

    /// One value's postings, newest first, until the first match or the
    /// first piece that starts below `floor`.
    async fn highest_of_value(
        &self,
        at: &IndexedHead,
        pk: &str,
        key: &str,
        selector: &Selector,
        floor: u64,
        top: u64,
    ) -> Result<Option<u64>, StoreError> {
        let (low, high) = index_keys::posting_range(key, 0, top);
        let mut start = None;
        loop {
            let page = self
                .query_postings_page(
                    pk,
                    Bounds::Between(&low, &high),
                    false,
                    start,
                    Some(VALUE_PAGE),
                )
                .await?;
            for item in page.items() {
                // Pieces of one value never overlap: the first piece with a
                // match holds the highest one.
                let mut events = piece_events(item)?;
                let starts_below_floor = events.first().is_some_and(|e| e.revision < floor);
                events.reverse();
                for e in events {
                    if e.revision < floor {
                        return Ok(None);
                    }
                    if e.revision <= top && self.is_match(at, selector, &e).await? {
                        return Ok(Some(e.revision));
                    }
                }
                // Older pieces hold only older events.
                if starts_below_floor {
                    return Ok(None);
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(None),
            }
        }
    }
}

/// The facts conditions look at, of a stored event.
pub(crate) fn stored_facts(revision: u64, event: &CloudEvent) -> Result<OwnedFacts, StoreError> {
    OwnedFacts::of(event)
        .ok_or_else(|| StoreError::Fault(format!("stored event {revision} has no stream")))
}
