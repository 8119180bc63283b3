//! `BatchWriteItem` (puts and deletes, at most 25), with the items
//! DynamoDB leaves unprocessed (throttling) sent again after a backoff: one
//! home for reclaim's deletes and the condition index's puts. Every call
//! and pause ends before the store's deadline, if it has one.

use std::time::Duration;

use aws_sdk_dynamodb::types::WriteRequest;

use crate::{Store, StoreError, error::classify};

/// `BatchWriteItem` takes at most this many requests.
pub(crate) const BATCH_ITEMS: usize = 25;
/// Sends before giving up on items that stay unprocessed.
const SENDS: u32 = 8;

impl Store {
    /// Writes `requests` (at most [`BATCH_ITEMS`]); `operation` names the
    /// caller in errors and logs.
    pub(crate) async fn write_batch(
        &self,
        operation: &str,
        mut requests: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        for send in 0..SENDS {
            let out = self
                .in_time(
                    operation,
                    self.client
                        .batch_write_item()
                        .request_items(&self.config.table_name, requests)
                        .send(),
                )
                .await?
                .map_err(|e| classify(operation, e))?;
            match out
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.config.table_name))
            {
                Some(rest) if !rest.is_empty() && send + 1 < SENDS => {
                    requests = rest;
                    self.pause(
                        Duration::from_millis(10 << send),
                        Duration::from_millis(100),
                        || format!("{operation}: out of time with items unprocessed"),
                    )
                    .await?;
                }
                Some(rest) if !rest.is_empty() => break,
                _ => return Ok(()),
            }
        }
        Err(StoreError::Unavailable(format!(
            "{operation}: items stayed unprocessed"
        )))
    }
}
