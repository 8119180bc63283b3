//! The indexer's work (docs/design/dcb-index.md §3.2): index a database's
//! committed chunks past its watermark, then move the watermark.
//!
//! The order is what makes the index safe to read: every item of a slice
//! is acknowledged before the watermark moves past it, so a reader that
//! reads the watermark first and the index after finds every event at or
//! below the watermark. Every write repeats safely (items are the same for
//! the same chunk; the watermark moves by compare-and-set), so crashes,
//! retries and two indexers at once cost double work, never a wrong index.

use std::{collections::HashMap, time::Duration};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use evidentsource_domain::OwnedFacts;
use evidentsource_table_schema::index as index_keys;

use super::build::{CommittedEvent, chunk_items};
use crate::{
    Store, StoreError,
    attr::{get_u64, n, s},
    attribute,
    batch::BATCH_ITEMS,
    error::{classify, fault},
    head::HeadItem,
    keys,
};

/// The watermark's attribute: the last revision indexed (a chunk boundary).
pub const WATERMARK: &str = "w";
/// A posting item's attribute: its piece's encoding.
pub const PIECE: &str = "e";
/// About this many events are indexed per slice before the watermark moves.
pub const SLICE_EVENTS: u64 = 5_000;

/// What one call did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IndexProgress {
    /// The watermark after the call.
    pub watermark: u64,
    /// The head's revision when last read.
    pub head: u64,
    pub items_written: u64,
    /// Slices indexed (watermark moves).
    pub slices: u32,
}

impl Store {
    /// Indexes database `name` up to its head, a slice at a time, until
    /// done or `budget` is spent. A deleted database is left alone (its
    /// index goes with its other items).
    pub async fn index_database(
        &self,
        name: &str,
        budget: Duration,
    ) -> Result<IndexProgress, StoreError> {
        let until = tokio::time::Instant::now() + budget;
        let mut progress = IndexProgress::default();
        loop {
            let Some(head) = self.read_head(name).await?.filter(HeadItem::is_active) else {
                return Ok(progress);
            };
            let watermark = self.read_watermark(&head).await?;
            progress.watermark = watermark;
            progress.head = head.revision;
            if watermark >= head.revision || tokio::time::Instant::now() >= until {
                return Ok(progress);
            }
            let to = head.revision.min(watermark + SLICE_EVENTS);
            let (written, new_watermark) = self.index_slice(&head, watermark + 1, to).await?;
            progress.items_written += written;
            self.move_watermark(&head, watermark, new_watermark).await?;
            progress.slices += 1;
        }
    }

    /// The incarnation's watermark (0 when nothing is indexed yet).
    pub(crate) async fn read_watermark(&self, head: &HeadItem) -> Result<u64, StoreError> {
        let out = self
            .in_time(
                "GetItem (index watermark)",
                self.client
                    .get_item()
                    .table_name(&self.config.table_name)
                    .key(attribute::PK, s(&keys::head_pk(&head.name)))
                    .key(
                        attribute::SK,
                        s(&index_keys::watermark_sk(&head.incarnation)),
                    )
                    .consistent_read(true)
                    .send(),
            )
            .await?
            .map_err(|e| classify("GetItem (index watermark)", e))?;
        match out.item {
            None => Ok(0),
            Some(item) => get_u64(&item, WATERMARK),
        }
    }

    /// Writes the index items of the chunks holding `from..=to` (whole
    /// chunks: the last may end past `to`); returns the items written and
    /// the last revision of the last chunk.
    async fn index_slice(
        &self,
        head: &HeadItem,
        from: u64,
        to: u64,
    ) -> Result<(u64, u64), StoreError> {
        let (chunks, _) = self.query_chunks(head, from, to).await?;
        let mut requests = Vec::new();
        // Chunks of a slice share types and streams: each dictionary item
        // once (a batch may not name an item twice).
        let mut listed = std::collections::BTreeSet::new();
        let mut last = from - 1;
        for (first, events) in chunks {
            let committed: Vec<CommittedEvent> = events
                .iter()
                .enumerate()
                .map(|(i, event)| {
                    let revision = first + i as u64;
                    let facts = OwnedFacts::of(event).ok_or_else(|| {
                        StoreError::Fault(format!("stored event {revision} has no stream"))
                    })?;
                    Ok(CommittedEvent {
                        revision,
                        chunk_first: first,
                        facts,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            last = last.max(first + events.len() as u64 - 1);
            let (postings, dictionary) = chunk_items(&head.name, &head.incarnation, &committed);
            for p in postings {
                requests.push(put(HashMap::from([
                    (attribute::PK.to_owned(), s(&p.pk)),
                    (attribute::SK.to_owned(), s(&p.sk)),
                    (PIECE.to_owned(), AttributeValue::B(p.piece.into())),
                ]))?);
            }
            for d in dictionary.into_iter().filter(|d| listed.insert(d.clone())) {
                requests.push(put(HashMap::from([
                    (attribute::PK.to_owned(), s(&d.pk)),
                    (attribute::SK.to_owned(), s(&d.sk)),
                ]))?);
            }
        }
        if last < to {
            return Err(StoreError::Fault(format!(
                "revisions {from}..={to} of {:?}: the chunks end at {last}",
                head.name
            )));
        }
        let written = requests.len() as u64;
        for batch in requests.chunks(BATCH_ITEMS) {
            self.write_batch("BatchWriteItem (index)", batch.to_vec())
                .await?;
        }
        Ok((written, last))
    }

    /// Moves the watermark from `old` to `new`, unless another indexer
    /// moved it meanwhile (then the next round reads where it stands).
    async fn move_watermark(&self, head: &HeadItem, old: u64, new: u64) -> Result<(), StoreError> {
        let condition = if old == 0 {
            "attribute_not_exists(#w) OR #w = :old"
        } else {
            "#w = :old"
        };
        let result = self
            .in_time(
                "UpdateItem (index watermark)",
                self.client
                    .update_item()
                    .table_name(&self.config.table_name)
                    .key(attribute::PK, s(&keys::head_pk(&head.name)))
                    .key(
                        attribute::SK,
                        s(&index_keys::watermark_sk(&head.incarnation)),
                    )
                    .update_expression("SET #w = :new")
                    .condition_expression(condition)
                    .expression_attribute_names("#w", WATERMARK)
                    .expression_attribute_values(":new", n(new))
                    .expression_attribute_values(":old", n(old))
                    .send(),
            )
            .await?;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(classify("UpdateItem (index watermark)", e)),
        }
    }
}

fn put(item: HashMap<String, AttributeValue>) -> Result<WriteRequest, StoreError> {
    Ok(WriteRequest::builder()
        .put_request(
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(fault)?,
        )
        .build())
}
