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

use aws_sdk_dynamodb::types::AttributeValue;
use evidentsource_domain::{AppendCondition, ConditionCheck, OwnedFacts, Selector};
use evidentsource_table_schema::index as index_keys;

use super::{
    plan::{Dimension, Range, cover},
    posting::{IndexedEvent, decode, matches},
    writer::{PIECE, WATERMARK},
};
use crate::{
    Store, StoreError,
    attr::{get_s, get_u64, s},
    attribute,
    error::classify,
    head::HeadItem,
    keys,
};

/// A head with its incarnation's index watermark.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedHead {
    pub head: HeadItem,
    /// The last revision indexed (0: none).
    pub watermark: u64,
}

impl Store {
    /// The head and its incarnation's watermark, from one strongly
    /// consistent query of the head's partition. `None`: no such database.
    pub async fn head_and_watermark(&self, name: &str) -> Result<Option<IndexedHead>, StoreError> {
        let out = self
            .in_time(
                "Query (head and watermark)",
                self.client
                    .query()
                    .table_name(&self.config.table_name)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(&keys::head_pk(name)))
                    .consistent_read(true)
                    .send(),
            )
            .await?
            .map_err(|e| classify("Query (head and watermark)", e))?;
        let items = out.items.unwrap_or_default();
        let Some(head) = items.iter().find(|i| {
            i.get(attribute::SK)
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some(keys::HEAD_SK)
        }) else {
            return Ok(None);
        };
        let head =
            HeadItem::from_item(head.clone()).map_err(|e| StoreError::Fault(e.to_string()))?;
        let mark = index_keys::watermark_sk(&head.incarnation);
        let watermark = match items
            .iter()
            .find(|i| i.get(attribute::SK).and_then(|v| v.as_s().ok()) == Some(&mark))
        {
            Some(item) => get_u64(item, WATERMARK)?,
            None => 0,
        };
        Ok(Some(IndexedHead { head, watermark }))
    }

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

    async fn query_postings(
        &self,
        pk: &str,
        bounds: Bounds<'_>,
        forward: bool,
        start: Option<std::collections::HashMap<String, AttributeValue>>,
    ) -> Result<aws_sdk_dynamodb::operation::query::QueryOutput, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.config.table_name)
            .expression_attribute_values(":pk", s(pk))
            .scan_index_forward(forward)
            .consistent_read(true)
            .set_exclusive_start_key(start);
        let query = match bounds {
            // DynamoDB refuses an empty key value: every item of the partition.
            Bounds::Prefix("") => query.key_condition_expression("pk = :pk"),
            Bounds::Prefix(p) => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                .expression_attribute_values(":p", s(p)),
            Bounds::Between(a, b) => query
                .key_condition_expression("pk = :pk AND sk BETWEEN :a AND :b")
                .expression_attribute_values(":a", s(a))
                .expression_attribute_values(":b", s(b)),
        };
        self.in_time("Query (index)", query.send())
            .await?
            .map_err(|e| classify("Query (index)", e))
    }

    /// Whether `selector` matches the event: from the facts the index
    /// keeps, else (a long fact left it open) from the event itself.
    async fn is_match(
        &self,
        at: &IndexedHead,
        selector: &Selector,
        event: &IndexedEvent,
    ) -> Result<bool, StoreError> {
        if let Some(verdict) = matches(selector, event) {
            return Ok(verdict);
        }
        let (chunks, _) = self
            .query_chunks(&at.head, event.revision, event.revision)
            .await?;
        let stored = chunks
            .iter()
            .find_map(|(first, events)| {
                event
                    .revision
                    .checked_sub(*first)
                    .and_then(|i| events.get(i as usize))
            })
            .ok_or_else(|| {
                StoreError::Fault(format!("event {} not in its chunk", event.revision))
            })?;
        let facts = OwnedFacts::of(stored).ok_or_else(|| {
            StoreError::Fault(format!("stored event {} has no stream", event.revision))
        })?;
        Ok(selector.matches(&facts.as_facts()))
    }
}

enum Bounds<'a> {
    Prefix(&'a str),
    Between(&'a str, &'a str),
}

/// A posting item's events (its first revision is in its sort key).
fn piece_events(
    item: &std::collections::HashMap<String, AttributeValue>,
) -> Result<Vec<IndexedEvent>, StoreError> {
    let sk = get_s(item, attribute::SK)?;
    let first: u64 = sk
        .rsplit_once(index_keys::VALUE_END)
        .and_then(|(_, r)| r.parse().ok())
        .ok_or_else(|| StoreError::Fault(format!("index key {sk:?}")))?;
    let piece = match item.get(PIECE) {
        Some(AttributeValue::B(b)) => b.as_ref(),
        _ => return Err(StoreError::Fault(format!("index item {sk:?} has no piece"))),
    };
    decode(first, piece).map_err(StoreError::Fault)
}
