//! Reads: a database's latest state, its events by revision, the head item,
//! and the chunk queries both reads and condition checks are built on.

use aws_sdk_dynamodb::types::AttributeValue;
use evidentsource_domain::{DatabaseName, Error};
use evidentsource_proto::{Database, cloudevents::CloudEvent};

use crate::{
    Store, StoreError,
    attr::{get_s, get_u64, s},
    attribute, chunk,
    error::classify,
    head::HeadItem,
    keys,
};

/// An event as stored, with the revision it took.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub revision: u64,
    pub event: CloudEvent,
}

impl Store {
    /// The latest state of a database.
    pub async fn get_database(&self, name: &DatabaseName) -> Result<Database, StoreError> {
        Ok(self.active_head(name.as_str()).await?.database())
    }

    /// The events of revisions `from..=to`, in order. `to` beyond the latest
    /// revision is clamped to it, and at most `max_read_events` are returned.
    pub async fn read_events(
        &self,
        name: &DatabaseName,
        from: u64,
        to: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        if from == 0 {
            return Err(Error::invalid_argument("from", "event revisions start at 1").into());
        }
        if to < from {
            return Err(
                Error::invalid_argument("to", format!("{to} is before from ({from})")).into(),
            );
        }
        let head = self.active_head(name.as_str()).await?;
        let to = to
            .min(head.revision)
            .min(from.saturating_add(self.config.max_read_events - 1));
        if from > to {
            return Ok(Vec::new());
        }
        let (chunks, _) = self.query_chunks(&head, from, to).await?;
        let mut events = Vec::with_capacity((to - from + 1) as usize);
        for (first, chunk) in chunks {
            for (i, event) in chunk.into_iter().enumerate() {
                let revision = first + i as u64;
                if (from..=to).contains(&revision) {
                    events.push(StoredEvent { revision, event });
                }
            }
        }
        if events.len() as u64 != to - from + 1 {
            return Err(StoreError::Fault(format!(
                "revisions {from}..={to} of {:?}: found {} events",
                head.name,
                events.len()
            )));
        }
        Ok(events)
    }

    /// The head item, if the database exists (not deleted).
    pub(crate) async fn active_head(&self, name: &str) -> Result<HeadItem, StoreError> {
        match self.read_head(name).await? {
            Some(head) if head.is_active() => Ok(head),
            _ => Err(Error::not_found(name).into()),
        }
    }

    /// The head item as stored (also a tombstone), strongly consistent.
    pub async fn read_head(&self, name: &str) -> Result<Option<HeadItem>, StoreError> {
        let out = self
            .in_time(
                "GetItem (head)",
                self.client
                    .get_item()
                    .table_name(&self.config.table_name)
                    .key(attribute::PK, s(&keys::head_pk(name)))
                    .key(attribute::SK, s(keys::HEAD_SK))
                    .consistent_read(true)
                    .send(),
            )
            .await?
            .map_err(|e| classify("GetItem (head)", e))?;
        out.item
            .map(|item| HeadItem::from_item(item).map_err(|e| StoreError::Fault(e.to_string())))
            .transpose()
    }

    /// The sort key of the chunk of partition `pk` that holds revision
    /// `from` (it starts at or before it); `from`'s own key when none does.
    pub(crate) async fn chunk_holding(&self, pk: &str, from: u64) -> Result<String, StoreError> {
        let first = self
            .in_time(
                "Query (first chunk)",
                self.client
                    .query()
                    .table_name(&self.config.table_name)
                    .key_condition_expression("pk = :pk AND sk <= :from")
                    .expression_attribute_values(":pk", s(pk))
                    .expression_attribute_values(":from", s(&keys::chunk_sk(from)))
                    .scan_index_forward(false)
                    .limit(1)
                    .projection_expression(attribute::SK)
                    .consistent_read(true)
                    .send(),
            )
            .await?
            .map_err(|e| classify("Query (first chunk)", e))?;
        Ok(first
            .items()
            .first()
            .and_then(|i| i.get(attribute::SK))
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_else(|| keys::chunk_sk(from)))
    }

    /// One page of the chunks of partition `pk` from sort key `start` up to
    /// the chunk starting at `to`, at most `limit` of them.
    pub(crate) async fn chunk_page(
        &self,
        pk: &str,
        start: &str,
        to: u64,
        exclusive_start: Option<std::collections::HashMap<String, AttributeValue>>,
        limit: Option<i32>,
    ) -> Result<aws_sdk_dynamodb::operation::query::QueryOutput, StoreError> {
        self.in_time(
            "Query (chunks)",
            self.client
                .query()
                .table_name(&self.config.table_name)
                .key_condition_expression("pk = :pk AND sk BETWEEN :a AND :b")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":a", s(start))
                .expression_attribute_values(":b", s(&keys::chunk_sk(to)))
                .consistent_read(true)
                .set_limit(limit)
                .set_exclusive_start_key(exclusive_start)
                .send(),
        )
        .await?
        .map_err(|e| classify("Query (chunks)", e))
    }

    /// The chunks holding revisions `from..=to` (whole chunks; the first may
    /// start before `from`), with the number of query round trips.
    pub(crate) async fn query_chunks(
        &self,
        head: &HeadItem,
        from: u64,
        to: u64,
    ) -> Result<(Vec<(u64, Vec<CloudEvent>)>, u32), StoreError> {
        let mut chunks = Vec::new();
        let round_trips = self
            .scan_chunks(head, from, to, Start::Within, |first, events| {
                chunks.push((first, events));
                Ok(())
            })
            .await?;
        Ok((chunks, round_trips))
    }

    /// Visits the chunks holding revisions `from..=to` in order, one query
    /// page (≤ 1 MB) in memory at a time, whatever the range's length;
    /// returns the query round trips. `Start::Chunk` saves a round trip
    /// when a chunk is known to start at `from` (a watermark or a head
    /// revision plus one: both end chunks).
    pub(crate) async fn scan_chunks(
        &self,
        head: &HeadItem,
        from: u64,
        to: u64,
        start: Start,
        mut visit: impl FnMut(u64, Vec<CloudEvent>) -> Result<(), StoreError>,
    ) -> Result<u32, StoreError> {
        let pk = keys::events_pk(&head.name, &head.incarnation);
        let mut round_trips = 0;
        let start = match start {
            Start::Chunk => keys::chunk_sk(from),
            Start::Within => {
                round_trips += 1;
                self.chunk_holding(&pk, from).await?
            }
        };

        let mut exclusive_start = None;
        loop {
            let page = self
                .chunk_page(&pk, &start, to, exclusive_start, None)
                .await?;
            round_trips += 1;
            for item in page.items() {
                let (first, events) = decode_chunk(item, &pk)?;
                visit(first, events)?;
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => exclusive_start = Some(key),
                _ => break,
            }
        }
        Ok(round_trips)
    }
}

/// Where a chunk scan's first revision lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// A chunk starts exactly there.
    Chunk,
    /// Anywhere: the chunk holding it is looked up first.
    Within,
}

/// A chunk item of partition `pk` → its first revision and its events.
pub(crate) fn decode_chunk(
    item: &std::collections::HashMap<String, AttributeValue>,
    pk: &str,
) -> Result<(u64, Vec<CloudEvent>), StoreError> {
    let sk = get_s(item, attribute::SK)?;
    let first: u64 = sk
        .parse()
        .map_err(|_| StoreError::Fault(format!("chunk key {sk:?}")))?;
    let count = get_u64(item, "n")? as usize;
    let payload = match item.get("d") {
        Some(AttributeValue::B(b)) => b.as_ref(),
        _ => return Err(StoreError::Fault(format!("chunk {sk} has no data"))),
    };
    let events = chunk::unpack(payload, count)
        .map_err(|e| StoreError::Fault(format!("chunk {sk} of {pk}: {e}")))?;
    Ok((first, events))
}
