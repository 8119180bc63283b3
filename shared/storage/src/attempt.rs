//! Whether a failed commit attempt failed on its own commit: recognising a
//! commit whose response was lost (what a cancellation says is read in
//! `crate::cancellation`).
//!
//! The AWS SDK retries a `TransactWriteItems` whose response it did not get
//! (timeout, dropped connection, 5xx). If the first request committed, the
//! retry's conditions fail on that very commit: DynamoDB's
//! `ClientRequestToken` prevents this for 10 minutes (the retry then gets
//! the first request's answer), but a store must not rely on it alone (a
//! local DynamoDB may not implement it). So every commit carries its batch
//! id in the head and in its first chunk, and a failed request that was
//! sent more than once checks whether its batch is in the table before it
//! treats the failure as contention.

use std::sync::{
    Arc,
    atomic::{AtomicU32, Ordering},
};

use aws_sdk_dynamodb::{
    config::{
        ConfigBag, Intercept, RuntimeComponents, interceptors::BeforeTransmitInterceptorContextRef,
    },
    error::BoxError,
};
use evidentsource_proto::BatchSummary;

use crate::{
    Store, StoreError,
    attr::{get_s, s},
    attribute,
    error::classify,
    head::HeadItem,
    keys,
};

/// The attribute of a commit's first chunk that holds its batch id.
pub(crate) const BATCH_ATTR: &str = "b";

/// Counts the requests the SDK sent for one operation (its retries
/// included), as a per-operation interceptor.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sends(Arc<AtomicU32>);

impl Sends {
    pub fn count(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Intercept for Sends {
    fn name(&self) -> &'static str {
        "Sends"
    }

    // Counted at transmission: an attempt that never left cannot have
    // committed.
    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl Store {
    /// Whether the commit of `summary` (batch id, basis, revision) is in
    /// the table: a request sent again after its response was lost fails on
    /// its own commit. `returned` is the head the failed request returned,
    /// if any; `incarnation` the one the commit was for.
    pub(crate) async fn committed(
        &self,
        returned: Option<&HeadItem>,
        incarnation: &str,
        summary: &BatchSummary,
    ) -> Result<bool, StoreError> {
        let head = match returned {
            Some(head) => head.clone(),
            None => match self.read_head(&summary.database).await? {
                Some(head) => head,
                None => return Ok(false),
            },
        };
        if head.incarnation != incarnation || head.revision <= summary.basis {
            // Nothing (of this incarnation) was committed on our basis.
            return Ok(false);
        }
        if head.batch_id.as_deref() == Some(summary.id.as_str()) {
            return Ok(head.revision == summary.revision);
        }
        // Others committed after it, or someone else took the basis: the
        // first chunk after the basis says whose commit it was.
        let out = self
            .in_time(
                "GetItem (first chunk)",
                self.client
                    .get_item()
                    .table_name(&self.config.table_name)
                    .key(
                        attribute::PK,
                        s(&keys::events_pk(&summary.database, incarnation)),
                    )
                    .key(attribute::SK, s(&keys::chunk_sk(summary.basis + 1)))
                    .projection_expression("#b")
                    .expression_attribute_names("#b", BATCH_ATTR)
                    .consistent_read(true)
                    .send(),
            )
            .await?
            .map_err(|e| classify("GetItem (first chunk)", e))?;
        Ok(out
            .item
            .is_some_and(|item| get_s(&item, BATCH_ATTR).is_ok_and(|b| b == summary.id)))
    }
}
