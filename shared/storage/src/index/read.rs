//! Reading the index's items: the head with its watermark, posting pages,
//! and what a posting keeps of an event (from the event itself when a long
//! fact leaves a selector's verdict open). Conditions (`eval`) and queries
//! share these.

use aws_sdk_dynamodb::types::AttributeValue;
use evidentsource_domain::{OwnedFacts, Selector};
use evidentsource_table_schema::index as index_keys;

use super::{
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

    /// One page of an index partition's items within `bounds`.
    pub(crate) async fn query_postings(
        &self,
        pk: &str,
        bounds: Bounds<'_>,
        forward: bool,
        start: Option<std::collections::HashMap<String, AttributeValue>>,
    ) -> Result<aws_sdk_dynamodb::operation::query::QueryOutput, StoreError> {
        self.query_postings_page(pk, bounds, forward, start, None)
            .await
    }

    /// [`Store::query_postings`] reading at most `limit` items (a query's
    /// cursors read a few at a time).
    pub(crate) async fn query_postings_page(
        &self,
        pk: &str,
        bounds: Bounds<'_>,
        forward: bool,
        start: Option<std::collections::HashMap<String, AttributeValue>>,
        limit: Option<i32>,
    ) -> Result<aws_sdk_dynamodb::operation::query::QueryOutput, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.config.table_name)
            .expression_attribute_values(":pk", s(pk))
            .scan_index_forward(forward)
            .consistent_read(true)
            .set_limit(limit)
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
    pub(crate) async fn is_match(
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

/// Which items of an index partition a query reads.
pub(crate) enum Bounds<'a> {
    Prefix(&'a str),
    Between(&'a str, &'a str),
}

/// A posting item's events (its first revision is in its sort key).
pub(crate) fn piece_events(
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
