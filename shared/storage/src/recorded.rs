//! What the table keeps of each committed transaction, for re-publishing
//! its Transacted event (`evidentsource-admin republish`, docs/replay.md):
//! the batch id (`b`) and the recorded time (`t`) on the transaction's
//! first chunk, its basis from that chunk's key, its revision from where
//! the next transaction starts (or the head's revision). Only the keys and
//! these attributes are read, never the events (`d`), though DynamoDB
//! counts whole items against read capacity.
//!
//! Chunks written before `t` existed read with `recorded_time: None`: the
//! caller decides (republish refuses them rather than send an event that
//! differs from the original).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::{
    Store, StoreError,
    attempt::BATCH_ATTR,
    attr::{get_s, get_u64, s},
    attribute,
    error::classify,
    head::HeadItem,
    keys,
};

/// The recorded time (milliseconds) of a transaction, on its first chunk.
pub(crate) const RECORDED_ATTR: &str = "t";
/// The chunk's event count.
const COUNT_ATTR: &str = "n";

/// One committed transaction as the table records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedBatch {
    pub id: String,
    pub basis: u64,
    pub revision: u64,
    /// Milliseconds since the epoch; `None` on chunks written before the
    /// table kept it.
    pub recorded_time: Option<i64>,
}

/// The keys and transaction attributes of one chunk item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkMeta {
    pub first: u64,
    pub count: u64,
    pub batch: Option<String>,
    pub time: Option<i64>,
}

impl ChunkMeta {
    fn of(item: &HashMap<String, AttributeValue>) -> Result<Self, StoreError> {
        let sk = get_s(item, attribute::SK)?;
        let first = sk
            .parse()
            .map_err(|_| StoreError::Fault(format!("chunk key {sk:?}")))?;
        let time = match item.get(RECORDED_ATTR) {
            None => None,
            Some(_) => Some(get_u64(item, RECORDED_ATTR)? as i64),
        };
        Ok(ChunkMeta {
            first,
            count: get_u64(item, COUNT_ATTR)?,
            batch: item
                .get(BATCH_ATTR)
                .map(|_| get_s(item, BATCH_ATTR))
                .transpose()?,
            time,
        })
    }
}

/// Chunks in key order, from a transaction's first chunk, up to `end` (the
/// head's revision) → the transactions they hold. Errors name what breaks
/// the layout (a gap, a first chunk without its batch id).
pub(crate) fn fold_batches(
    chunks: impl IntoIterator<Item = ChunkMeta>,
    end: u64,
) -> Result<Vec<RecordedBatch>, String> {
    let mut batches: Vec<RecordedBatch> = Vec::new();
    let mut next: Option<u64> = None;
    for c in chunks {
        if let Some(expected) = next
            && c.first != expected
        {
            return Err(format!(
                "chunk {} follows a chunk ending at revision {}",
                c.first,
                expected - 1
            ));
        }
        if c.count == 0 {
            return Err(format!("chunk {} holds no events", c.first));
        }
        match c.batch {
            Some(id) => batches.push(RecordedBatch {
                id,
                basis: c.first - 1,
                revision: c.first - 1 + c.count,
                recorded_time: c.time,
            }),
            None => match batches.last_mut() {
                Some(open) => open.revision += c.count,
                None => {
                    return Err(format!(
                        "chunk {} does not start a transaction (no batch id)",
                        c.first
                    ));
                }
            },
        }
        next = Some(c.first + c.count);
    }
    let reached = next.map_or(end, |n| n - 1);
    if reached != end {
        return Err(format!(
            "the chunks end at revision {reached}, the head is at {end}"
        ));
    }
    Ok(batches)
}

impl Store {
    /// The transactions of `head`'s incarnation whose revision is above
    /// `after` (the one holding revision `after + 1` and every later one),
    /// in order, up to the head's revision.
    pub async fn recorded_batches(
        &self,
        head: &HeadItem,
        after: u64,
    ) -> Result<Vec<RecordedBatch>, StoreError> {
        if head.revision <= after {
            return Ok(Vec::new());
        }
        let pk = keys::events_pk(&head.name, &head.incarnation);
        let start = self.batch_start(&pk, after + 1).await?;
        let mut chunks = Vec::new();
        let mut exclusive_start = None;
        loop {
            let page = self
                .in_time(
                    "Query (chunk keys)",
                    self.client
                        .query()
                        .table_name(&self.config.table_name)
                        .key_condition_expression("pk = :pk AND sk BETWEEN :a AND :b")
                        .expression_attribute_values(":pk", s(&pk))
                        .expression_attribute_values(":a", s(&keys::chunk_sk(start)))
                        .expression_attribute_values(":b", s(&keys::chunk_sk(head.revision)))
                        .projection_expression("sk, #n, #b, #t")
                        .expression_attribute_names("#n", COUNT_ATTR)
                        .expression_attribute_names("#b", BATCH_ATTR)
                        .expression_attribute_names("#t", RECORDED_ATTR)
                        .consistent_read(true)
                        .set_exclusive_start_key(exclusive_start)
                        .send(),
                )
                .await?
                .map_err(|e| classify("Query (chunk keys)", e))?;
            for item in page.items() {
                chunks.push(ChunkMeta::of(item)?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => exclusive_start = Some(key),
                _ => break,
            }
        }
        let batches = fold_batches(chunks, head.revision)
            .map_err(|e| StoreError::Fault(format!("the history of {:?}: {e}", head.name)))?;
        Ok(batches.into_iter().filter(|b| b.revision > after).collect())
    }

    /// The first revision of the transaction holding `revision`: walks back
    /// from the chunk holding it to the first chunk carrying a batch id
    /// (one item, unless the transaction spans several chunks).
    async fn batch_start(&self, pk: &str, revision: u64) -> Result<u64, StoreError> {
        let mut exclusive_start = None;
        loop {
            let page = self
                .in_time(
                    "Query (transaction start)",
                    self.client
                        .query()
                        .table_name(&self.config.table_name)
                        .key_condition_expression("pk = :pk AND sk <= :at")
                        .expression_attribute_values(":pk", s(pk))
                        .expression_attribute_values(":at", s(&keys::chunk_sk(revision)))
                        .scan_index_forward(false)
                        .projection_expression("sk, #b")
                        .expression_attribute_names("#b", BATCH_ATTR)
                        .limit(8)
                        .consistent_read(true)
                        .set_exclusive_start_key(exclusive_start)
                        .send(),
                )
                .await?
                .map_err(|e| classify("Query (transaction start)", e))?;
            if let Some(item) = page.items().iter().find(|i| i.contains_key(BATCH_ATTR)) {
                let sk = get_s(item, attribute::SK)?;
                return sk
                    .parse()
                    .map_err(|_| StoreError::Fault(format!("chunk key {sk:?}")));
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => exclusive_start = Some(key),
                // No first chunk at or before it: the fold reports the gap.
                _ => return Ok(1),
            }
        }
    }

    /// Every head item of the table (active databases and tombstones), by
    /// a scan filtered on the head's sort key: an operator's listing, not
    /// a request path.
    pub async fn list_heads(&self) -> Result<Vec<HeadItem>, StoreError> {
        let mut heads = Vec::new();
        let mut exclusive_start = None;
        loop {
            let page = self
                .in_time(
                    "Scan (heads)",
                    self.client
                        .scan()
                        .table_name(&self.config.table_name)
                        .filter_expression("sk = :head AND begins_with(pk, :db)")
                        .expression_attribute_values(":head", s(keys::HEAD_SK))
                        .expression_attribute_values(":db", s(keys::HEAD_PK_PREFIX))
                        .set_exclusive_start_key(exclusive_start)
                        .send(),
                )
                .await?
                .map_err(|e| classify("Scan (heads)", e))?;
            for item in page.items() {
                heads.push(
                    HeadItem::from_item(item.clone())
                        .map_err(|e| StoreError::Fault(e.to_string()))?,
                );
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => exclusive_start = Some(key),
                _ => break,
            }
        }
        heads.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(heads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(first: u64, count: u64, batch: Option<&str>, time: Option<i64>) -> ChunkMeta {
        ChunkMeta {
            first,
            count,
            batch: batch.map(str::to_owned),
            time,
        }
    }

    fn batch(id: &str, basis: u64, revision: u64, time: Option<i64>) -> RecordedBatch {
        RecordedBatch {
            id: id.into(),
            basis,
            revision,
            recorded_time: time,
        }
    }

    #[test]
    fn chunks_fold_into_transactions() {
        type Case = (
            Vec<ChunkMeta>,
            u64,
            Result<Vec<RecordedBatch>, &'static str>,
        );
        let cases: Vec<Case> = vec![
            (vec![], 0, Ok(vec![])),
            (
                vec![
                    chunk(1, 2, Some("a"), Some(10)),
                    chunk(3, 1, Some("b"), None),
                ],
                3,
                Ok(vec![batch("a", 0, 2, Some(10)), batch("b", 2, 3, None)]),
            ),
            // A transaction over three chunks, then one of one chunk.
            (
                vec![
                    chunk(5, 2, Some("a"), Some(1)),
                    chunk(7, 3, None, None),
                    chunk(10, 1, None, None),
                    chunk(11, 4, Some("b"), Some(2)),
                ],
                14,
                Ok(vec![
                    batch("a", 4, 10, Some(1)),
                    batch("b", 10, 14, Some(2)),
                ]),
            ),
            (
                vec![chunk(1, 2, Some("a"), None), chunk(4, 1, Some("b"), None)],
                4,
                Err("follows"),
            ),
            (vec![chunk(3, 1, None, None)], 3, Err("does not start")),
            (vec![chunk(1, 2, Some("a"), None)], 5, Err("head is at 5")),
            (vec![chunk(1, 0, Some("a"), None)], 0, Err("no events")),
        ];
        for (chunks, end, expected) in cases {
            let got = fold_batches(chunks.clone(), end);
            match (&got, expected) {
                (Ok(got), Ok(want)) => assert_eq!(*got, want, "{chunks:?}"),
                (Err(e), Err(want)) => assert!(e.contains(want), "{e} / {want}"),
                _ => panic!("{chunks:?}: {got:?}"),
            }
        }
    }
}
