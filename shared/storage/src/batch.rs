//! `BatchWriteItem` (puts and deletes, at most 25) and `BatchGetItem`,
//! with the items DynamoDB leaves unprocessed (throttling, or a response
//! past 16 MB) sent again after a backoff: one home for reclaim's deletes,
//! the condition index's puts and the query's chunk reads. Every call and
//! pause ends before the store's deadline, if it has one.

use std::{collections::HashMap, time::Duration};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, WriteRequest};

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

/// An item as DynamoDB returns it.
pub(crate) type Item = HashMap<String, AttributeValue>;

impl Store {
    /// Reads the items with `keys` (at most 100), strongly consistent, in
    /// no particular order; a key without an item is left out.
    pub(crate) async fn read_batch(
        &self,
        operation: &str,
        keys: Vec<Item>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::with_capacity(keys.len());
        let mut request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| StoreError::Fault(format!("{operation}: {e}")))?;
        for send in 0..SENDS {
            let out = self
                .in_time(
                    operation,
                    self.client
                        .batch_get_item()
                        .request_items(&self.config.table_name, request)
                        .send(),
                )
                .await?
                .map_err(|e| classify(operation, e))?;
            if let Some(found) = out
                .responses
                .and_then(|mut r| r.remove(&self.config.table_name))
            {
                items.extend(found);
            }
            match out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.config.table_name))
            {
                Some(rest) if !rest.keys().is_empty() && send + 1 < SENDS => {
                    request = rest;
                    self.pause(
                        Duration::from_millis(10 << send),
                        Duration::from_millis(100),
                        || format!("{operation}: out of time with keys unprocessed"),
                    )
                    .await?;
                }
                Some(rest) if !rest.keys().is_empty() => break,
                _ => return Ok(items),
            }
        }
        Err(StoreError::Unavailable(format!(
            "{operation}: keys stayed unprocessed"
        )))
    }
}
