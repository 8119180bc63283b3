//! The indexer's work (docs/storage.md, "Who writes it"): index a database's
//! committed chunks past its watermark, then move the watermark.
//!
//! The order is what makes the index safe to read: every item of a slice
//! is acknowledged before the watermark moves past it, so a reader that
//! reads the watermark first and the index after finds every event at or
//! below the watermark. Every write repeats safely (items are the same for
//! the same chunk; the watermark moves by compare-and-set), so crashes,
//! retries and two indexers at once cost double work, never a wrong index.
//!
//! A dead incarnation is never given a watermark (§6, §10): the first
//! watermark write is a transaction that checks the head is still active
//! with the same incarnation. Without it, an indexer that read the head
//! before a delete could create `ix#{inc}` after reclaim removed the
//! incarnation's items, and nothing would ever remove it. Later moves
//! update an existing item only (`#w = :old`), which cannot create one.
//!
//! Time: every call runs under the store's deadline (`in_time`), and a
//! slice is started only while both the budget lasts and the deadline
//! leaves [`SLICE_RESERVE`], so a slice is not abandoned half way.

use std::{collections::HashMap, time::Duration};

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, PutRequest, TransactWriteItem, Update, WriteRequest,
};
use evidentsource_domain::OwnedFacts;
use evidentsource_table_schema::index as index_keys;

use super::build::{CommittedEvent, chunk_items};
use crate::{
    Store, StoreError,
    attr::{get_u64, n, s},
    attribute,
    batch::BATCH_ITEMS,
    cancellation::{cancellation, classify_transaction, failed_check},
    error::{classify, fault},
    head::{HeadItem, HeadState},
    keys,
    read::Start,
    size::item_size,
};

/// The watermark's attribute: the last revision indexed (a chunk boundary).
pub const WATERMARK: &str = "w";
/// A posting item's attribute: its piece's encoding.
pub const PIECE: &str = "e";
/// About this many events are indexed per slice before the watermark moves.
pub const SLICE_EVENTS: u64 = 5_000;
/// A slice is started only when the store's deadline is at least this far
/// away: a slice (a query of ~4 MB of chunks, ~100 batch writes, the
/// watermark) takes a few seconds, and one cut off by the deadline is
/// work thrown away.
pub const SLICE_RESERVE: Duration = Duration::from_secs(5);

/// What one call did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IndexProgress {
    /// The watermark after the call.
    pub watermark: u64,
    /// The head's revision when last read.
    pub head: u64,
    pub items_written: u64,
    /// Events indexed (the watermark's moves, in revisions).
    pub events: u64,
    /// What those items cost by DynamoDB's item-size rules (1 write unit
    /// per started KB; the watermark's moves not included).
    pub write_units: u64,
    /// Slices indexed (watermark moves).
    pub slices: u32,
    /// Whether the head read last was active; false: the database is
    /// deleted or does not exist (what was written before it was deleted
    /// is reclaimed with it).
    pub active: bool,
    /// Whether the budget or the deadline ended the call before the
    /// watermark reached the head.
    pub cut_short: bool,
}

/// What a watermark write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatermarkMove {
    Moved,
    /// Another indexer moved it first: re-read and go on from there.
    Raced,
    /// The head is no longer active with this incarnation (deleted, or
    /// deleted and created again): nothing was written.
    Dead,
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
                progress.active = false;
                return Ok(progress);
            };
            progress.active = true;
            let watermark = self.read_watermark(&head).await?;
            progress.watermark = watermark;
            progress.head = head.revision;
            if watermark >= head.revision {
                return Ok(progress);
            }
            if !self.may_start_slice(until) {
                progress.cut_short = true;
                return Ok(progress);
            }
            let to = head.revision.min(watermark + SLICE_EVENTS);
            let (written, new_watermark) = self.index_slice(&head, watermark + 1, to).await?;
            progress.items_written += written.items;
            progress.write_units += written.write_units;
            if self.move_watermark(&head, watermark, new_watermark).await? == WatermarkMove::Dead {
                // Deleted while we indexed: the next round reads the
                // tombstone (or the new incarnation) and says so.
                continue;
            }
            progress.events += new_watermark.saturating_sub(watermark);
            progress.slices += 1;
        }
    }

    /// Whether a slice started now ends within the budget and well before
    /// the store's deadline.
    fn may_start_slice(&self, until: tokio::time::Instant) -> bool {
        tokio::time::Instant::now() < until && self.deadline.is_none_or(|d| d.allows(SLICE_RESERVE))
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
    /// chunks: the last may end past `to`); returns what was written and
    /// the last revision of the last chunk.
    async fn index_slice(
        &self,
        head: &HeadItem,
        from: u64,
        to: u64,
    ) -> Result<(Written, u64), StoreError> {
        let mut requests = Vec::new();
        let mut write_units = 0;
        let mut add = |item: HashMap<String, AttributeValue>| -> Result<(), StoreError> {
            write_units += item_size(&item).div_ceil(1024) as u64;
            requests.push(put(item)?);
            Ok(())
        };
        // Chunks of a slice share types and streams: each dictionary item
        // once (a batch may not name an item twice).
        let mut listed = std::collections::BTreeSet::new();
        let mut last = from - 1;
        // A page of chunks at a time (events may be large): only what the
        // index keeps of each event stays. `from` follows the watermark,
        // the end of a chunk.
        self.scan_chunks(head, from, to, Start::Chunk, |first, events| {
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
                add(HashMap::from([
                    (attribute::PK.to_owned(), s(&p.pk)),
                    (attribute::SK.to_owned(), s(&p.sk)),
                    (PIECE.to_owned(), AttributeValue::B(p.piece.into())),
                ]))?;
            }
            for d in dictionary.into_iter().filter(|d| listed.insert(d.clone())) {
                add(HashMap::from([
                    (attribute::PK.to_owned(), s(&d.pk)),
                    (attribute::SK.to_owned(), s(&d.sk)),
                ]))?;
            }
            Ok(())
        })
        .await?;
        if last < to {
            return Err(StoreError::Fault(format!(
                "revisions {from}..={to} of {:?}: the chunks end at {last}",
                head.name
            )));
        }
        let written = Written {
            items: requests.len() as u64,
            write_units,
        };
        for batch in requests.chunks(BATCH_ITEMS) {
            self.write_batch("BatchWriteItem (index)", batch.to_vec())
                .await?;
        }
        Ok((written, last))
    }

    /// Moves the watermark from `old` to `new`, unless another indexer
    /// moved it meanwhile (then the next round reads where it stands). The
    /// first write (`old = 0`) creates the item, and only while the head is
    /// active with this incarnation (see the module docs).
    pub async fn move_watermark(
        &self,
        head: &HeadItem,
        old: u64,
        new: u64,
    ) -> Result<WatermarkMove, StoreError> {
        if old == 0 {
            return self.first_watermark(head, new).await;
        }
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
                    // An existing item only: never creates one.
                    .condition_expression("#w = :old")
                    .expression_attribute_names("#w", WATERMARK)
                    .expression_attribute_values(":new", n(new))
                    .expression_attribute_values(":old", n(old))
                    .send(),
            )
            .await?;
        match result {
            Ok(_) => Ok(WatermarkMove::Moved),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(WatermarkMove::Raced)
            }
            Err(e) => Err(classify("UpdateItem (index watermark)", e)),
        }
    }

    /// The first watermark write: the head's condition check and the
    /// watermark in one transaction.
    async fn first_watermark(
        &self,
        head: &HeadItem,
        new: u64,
    ) -> Result<WatermarkMove, StoreError> {
        const OPERATION: &str = "TransactWriteItems (first index watermark)";
        let table = &self.config.table_name;
        let alive = ConditionCheck::builder()
            .table_name(table)
            .key(attribute::PK, s(&keys::head_pk(&head.name)))
            .key(attribute::SK, s(keys::HEAD_SK))
            .condition_expression("#st = :active AND incarnation = :inc")
            .expression_attribute_names("#st", attribute::STATE)
            .expression_attribute_values(":active", s(HeadState::Active.as_str()))
            .expression_attribute_values(":inc", s(&head.incarnation))
            .build()
            .map_err(fault)?;
        // `:old = 0`: absent, or left at 0 by nobody (the writer never
        // writes 0), so another indexer's first write wins the race.
        let mark = Update::builder()
            .table_name(table)
            .key(attribute::PK, s(&keys::head_pk(&head.name)))
            .key(
                attribute::SK,
                s(&index_keys::watermark_sk(&head.incarnation)),
            )
            .update_expression("SET #w = :new")
            .condition_expression("attribute_not_exists(#w) OR #w = :old")
            .expression_attribute_names("#w", WATERMARK)
            .expression_attribute_values(":new", n(new))
            .expression_attribute_values(":old", n(0))
            .build()
            .map_err(fault)?;
        let request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(alive).build())
            .transact_items(TransactWriteItem::builder().update(mark).build())
            .send();
        match self.in_time(OPERATION, request).await? {
            Ok(_) => Ok(WatermarkMove::Moved),
            Err(e) => match cancellation(&e) {
                Some(reasons) if failed_check(&reasons, 0) => Ok(WatermarkMove::Dead),
                Some(reasons) if failed_check(&reasons, 1) => Ok(WatermarkMove::Raced),
                _ => Err(classify_transaction(OPERATION, e)),
            },
        }
    }
}

/// What a slice wrote.
struct Written {
    items: u64,
    write_units: u64,
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
