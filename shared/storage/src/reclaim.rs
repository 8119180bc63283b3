//! Reclaiming a deleted database's items.
//!
//! A delete writes, in the same transaction as the tombstone, an entry in the
//! reclaim queue (`pk = gc`). The items of the dead incarnation (chunks and
//! idempotency records, each under one partition key) are then deleted in
//! batches: first by the delete itself within a small time budget, then by
//! [`Store::reclaim_pending`] (run on a schedule) until none are left, when
//! the queue entry goes too. The tombstone head item expires by TTL.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use tokio::time::Instant;

use crate::{
    Store, StoreError,
    error::classify,
    keys,
    store::{get_s, s},
};

/// What a reclaim run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReclaimReport {
    /// Dead incarnations fully reclaimed (their queue entry removed).
    pub completed: usize,
    /// Items deleted.
    pub items_deleted: usize,
    /// Whether the queue is empty now.
    pub queue_empty: bool,
}

impl Store {
    /// Works through the reclaim queue for at most `budget`.
    pub async fn reclaim_pending(&self, budget: Duration) -> Result<ReclaimReport, StoreError> {
        let deadline = Instant::now() + budget;
        let mut report = ReclaimReport::default();
        let queue = self
            .client
            .query()
            .table_name(&self.config.table_name)
            .key_condition_expression("pk = :gc")
            .expression_attribute_values(":gc", s(keys::GC_PK))
            .limit(100)
            .send()
            .await
            .map_err(|e| classify("Query (reclaim queue)", e))?;
        let entries = queue.items();
        for entry in entries {
            if Instant::now() >= deadline {
                return Ok(report);
            }
            let name = get_s(entry, "name")?;
            let incarnation = get_s(entry, "incarnation")?;
            let (deleted, done) = self
                .reclaim_incarnation(&name, &incarnation, deadline)
                .await?;
            report.items_deleted += deleted;
            if done {
                report.completed += 1;
            }
        }
        report.queue_empty =
            report.completed == entries.len() && queue.last_evaluated_key.is_none();
        Ok(report)
    }

    /// Deletes the items of one dead incarnation until done or `deadline`.
    /// Returns the items deleted and whether the incarnation is gone.
    pub(crate) async fn reclaim_incarnation(
        &self,
        name: &str,
        incarnation: &str,
        deadline: Instant,
    ) -> Result<(usize, bool), StoreError> {
        let mut deleted = 0;
        for pk in [
            keys::events_pk(name, incarnation),
            keys::tx_pk(name, incarnation),
        ] {
            loop {
                if Instant::now() >= deadline {
                    return Ok((deleted, false));
                }
                let page = self
                    .client
                    .query()
                    .table_name(&self.config.table_name)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(&pk))
                    .projection_expression("pk, sk")
                    .limit(100)
                    .send()
                    .await
                    .map_err(|e| classify("Query (reclaim)", e))?;
                if page.items().is_empty() {
                    break;
                }
                for batch in page.items().chunks(25) {
                    deleted += batch.len();
                    self.delete_batch(batch).await?;
                }
            }
        }
        self.client
            .delete_item()
            .table_name(&self.config.table_name)
            .key("pk", s(keys::GC_PK))
            .key("sk", s(&keys::gc_sk(name, incarnation)))
            .send()
            .await
            .map_err(|e| classify("DeleteItem (reclaim queue)", e))?;
        Ok((deleted, true))
    }

    async fn delete_batch(
        &self,
        keys: &[std::collections::HashMap<String, AttributeValue>],
    ) -> Result<(), StoreError> {
        let mut requests: Vec<WriteRequest> = keys
            .iter()
            .map(|k| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(k.clone()))
                    .build()
                    .map_err(|e| StoreError::Fault(e.to_string()))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<_, StoreError>>()?;
        for attempt in 0..8u32 {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.config.table_name, requests)
                .send()
                .await
                .map_err(|e| classify("BatchWriteItem (reclaim)", e))?;
            match out
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.config.table_name))
            {
                Some(rest) if !rest.is_empty() => {
                    requests = rest;
                    tokio::time::sleep(Duration::from_millis(10 << attempt)).await;
                }
                _ => return Ok(()),
            }
        }
        Err(StoreError::Unavailable(
            "BatchWriteItem (reclaim): items stayed unprocessed".into(),
        ))
    }
}
