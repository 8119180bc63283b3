//! Reading the index (docs/design/dcb-index.md §3.3): the highest revision
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

use evidentsource_domain::{AppendCondition, ConditionCheck, OwnedFacts, Selector};
use evidentsource_table_schema::index as index_keys;

use super::{
    plan::{Dimension, Range, cover},
    read::{Bounds, IndexedHead, piece_events},
};
use crate::{Store, StoreError, attr::get_s, attribute};

impl Store {
    /// Each condition's highest matching revision at the head's revision,
    /// from the index and the chunks past its watermark.
    pub async fn evaluate_indexed(
        &self,
        at: &IndexedHead,
        conditions: &[AppendCondition],
    ) -> Result<ConditionCheck, StoreError> {
        let mut highest = Vec::with_capacity(conditions.len());
        for c in conditions {
            highest.push(self.highest_matching(at, &c.selector).await?.unwrap_or(0));
        }
        Ok(ConditionCheck { highest })
    }

    /// The highest revision at or below the head's of an event matching
    /// `selector`.
    pub async fn highest_matching(
        &self,
        at: &IndexedHead,
        selector: &Selector,
    ) -> Result<Option<u64>, StoreError> {
        let basis = at.head.revision;
        let indexed = at.watermark.min(basis);
        // Past the watermark: the chunks (at most the indexer's lag).
        if basis > indexed {
            let (chunks, _) = self.query_chunks(&at.head, indexed + 1, basis).await?;
            let mut found = None;
            for (first, events) in chunks {
                for (i, event) in events.iter().enumerate() {
                    let revision = first + i as u64;
                    if revision <= indexed || revision > basis {
                        continue;
                    }
                    let facts = OwnedFacts::of(event).ok_or_else(|| {
                        StoreError::Fault(format!("stored event {revision} has no stream"))
                    })?;
                    if selector.matches(&facts.as_facts()) {
                        found = Some(revision);
                    }
                }
            }
            if found.is_some() {
                return Ok(found);
            }
        }
        if indexed == 0 {
            return Ok(None);
        }
        let mut best = None;
        for range in cover(selector) {
            let found = self.highest_in_range(at, &range, selector, indexed).await?;
            best = best.max(found);
        }
        Ok(best)
    }

    /// The highest matching revision at or below `top` (a chunk boundary
    /// at or below the watermark) among `range`'s postings.
    async fn highest_in_range(
        &self,
        at: &IndexedHead,
        range: &Range,
        selector: &Selector,
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
                self.highest_of_value(at, &pk, &key, selector, top).await
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
                                if e.revision <= top
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
                    for item in page.items() {
                        let key = get_s(item, attribute::SK)?;
                        let found = self
                            .highest_of_value(at, &postings, &key, selector, top)
                            .await?;
                        best = best.max(found);
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

    /// One value's postings, newest first, until the first match.
    async fn highest_of_value(
        &self,
        at: &IndexedHead,
        pk: &str,
        key: &str,
        selector: &Selector,
        top: u64,
    ) -> Result<Option<u64>, StoreError> {
        let (low, high) = index_keys::posting_range(key, 0, top);
        let mut start = None;
        loop {
            let page = self
                .query_postings(pk, Bounds::Between(&low, &high), false, start)
                .await?;
            for item in page.items() {
                // Pieces of one value never overlap: the first piece with a
                // match holds the highest one.
                let mut events = piece_events(item)?;
                events.reverse();
                for e in events {
                    if e.revision <= top && self.is_match(at, selector, &e).await? {
                        return Ok(Some(e.revision));
                    }
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(None),
            }
        }
    }
}
