//! The indexer: the table's stream (head records) → each database's
//! condition index, up to its head (docs/storage.md, "Who writes it"). The
//! writer is `Store::index_database` (`storage/src/index/writer.rs`);
//! this is when it runs and what Lambda is told.
//!
//! [`handle`] is a plain async function from a Lambda DynamoDB event to
//! the `ReportBatchItemFailures` response; `main.rs` builds the store once
//! per cold start.
//!
//! Per batch: the active head records, grouped by database in the order
//! they first appear ([`batch::plan`]); each database is indexed up to the
//! head the writer reads from the table (so at least up to its records),
//! within its share of a budget that ends [`STOP_BEFORE_DEADLINE`] before
//! the invocation's deadline (what is left, divided by the databases left). A database not indexed as far as its records go
//! (the budget ran out, or an error) has its first record in the batch
//! reported, and Lambda retries from the lowest one reported; the writer
//! then goes on from the watermark, so a retry repeats no work.

pub mod batch;
pub mod metrics;

use std::time::Duration;

use aws_lambda_events::event::{
    dynamodb::Event as DynamoDbEvent,
    streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse},
};
use evidentsource_storage::{Deadline, Store, StoreError, index::writer::IndexProgress};

pub use batch::DatabaseWork;

/// The writer stops starting slices this long before the handler's
/// deadline: a slice in flight then still ends, with its watermark, well
/// inside the invocation (the store abandons any call at the deadline
/// itself), and the index of a database deleted meanwhile is reclaimed
/// only long after (`StoreConfig::index_grace`).
pub const STOP_BEFORE_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    #[error("record {index} failed and has no sequence number to report")]
    MissingSequenceNumber { index: usize },
}

/// Whether retrying can help, for the log line an operator reads. Both
/// are reported as batch item failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Throttling, DynamoDB unavailable, out of time: the retry goes on.
    Transient,
    /// No permission, no table, a chunk that does not read: retries fail
    /// until someone fixes the cause; the event source gives the records
    /// up after its retries, which costs index freshness only.
    Permanent,
}

pub fn failure_kind(error: &StoreError) -> FailureKind {
    if error.is_transient() {
        FailureKind::Transient
    } else {
        FailureKind::Permanent
    }
}

/// Whether a database is indexed as far as its records in the batch go.
/// Not cut short: the writer reached the head it read (which is at least
/// as new as any record of the batch), or the database is gone. Cut
/// short: only if the watermark still got past the records.
pub fn indexed_far_enough(progress: &IndexProgress, highest: u64) -> bool {
    !progress.cut_short || progress.watermark >= highest
}

/// A database's share of the time left when `left` databases (itself
/// included) still wait: one database's backfill must not starve the
/// others of the batch, and what one leaves goes on to the next ones.
pub fn budget_share(remaining: Duration, left: usize) -> Duration {
    remaining / left.max(1) as u32
}

/// What became of one database of the batch.
#[derive(Debug)]
pub struct DatabaseOutcome {
    pub work: DatabaseWork,
    pub result: Result<IndexProgress, StoreError>,
}

impl DatabaseOutcome {
    pub fn failed(&self) -> bool {
        match &self.result {
            Ok(progress) => !indexed_far_enough(progress, self.work.highest),
            Err(_) => true,
        }
    }
}

/// What one invocation did.
#[derive(Debug)]
pub struct BatchReport {
    pub databases: Vec<DatabaseOutcome>,
    /// Head records whose image does not read (skipped, logged).
    pub malformed: usize,
    pub response: DynamoDbEventResponse,
}

/// Indexes the batch's databases with `store` bound to `deadline`.
pub async fn handle(
    store: &Store,
    event: &DynamoDbEvent,
    deadline: Deadline,
) -> Result<BatchReport, IndexerError> {
    let store = store.with_deadline(deadline);
    let stop = Deadline::at(deadline.instant() - STOP_BEFORE_DEADLINE.min(deadline.remaining()));
    let (work, malformed) = batch::plan(&event.records);
    for (index, reason) in &malformed {
        let record = &event.records[*index];
        tracing::error!(
            sequence_number = record.change.sequence_number.as_deref().unwrap_or("?"),
            database = evidentsource_table_schema::stream::database_of_keys(&record.change.keys)
                .unwrap_or("?"),
            reason,
            "skipping a head record that does not read as a head item (the database's \
             next record indexes what it would have)"
        );
    }
    let mut databases = Vec::with_capacity(work.len());
    let count = work.len();
    for (done, work) in work.into_iter().enumerate() {
        let share = budget_share(stop.remaining(), count - done);
        let result = store.index_database(&work.name, share).await;
        let outcome = DatabaseOutcome { work, result };
        log(&outcome);
        databases.push(outcome);
    }
    let mut response = DynamoDbEventResponse::default();
    for outcome in databases.iter().filter(|o| o.failed()) {
        let index = outcome.work.first;
        let sequence_number = event.records[index]
            .change
            .sequence_number
            .clone()
            .ok_or(IndexerError::MissingSequenceNumber { index })?;
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number);
        response.batch_item_failures.push(failure);
    }
    Ok(BatchReport {
        databases,
        malformed: malformed.len(),
        response,
    })
}

/// One line per database; errors by kind. Store errors name the operation
/// and DynamoDB's code and message, never credentials or item contents.
fn log(outcome: &DatabaseOutcome) {
    let w = &outcome.work;
    match &outcome.result {
        Ok(p) if !p.active => tracing::info!(
            database = w.name,
            "not indexed: the database is deleted (its index goes with it)"
        ),
        Ok(p) if outcome.failed() => tracing::warn!(
            database = w.name,
            watermark = p.watermark,
            head = p.head,
            records_up_to = w.highest,
            "out of time before the index reached the head: Lambda retries from this \
             database's first record"
        ),
        Ok(p) => tracing::info!(
            database = w.name,
            watermark = p.watermark,
            head = p.head,
            slices = p.slices,
            items = p.items_written,
            "indexed"
        ),
        Err(e) => match failure_kind(e) {
            FailureKind::Transient => tracing::warn!(
                database = w.name, error = %e,
                "indexing failed (transient: Lambda retries from this database's first record)"
            ),
            FailureKind::Permanent => tracing::error!(
                database = w.name, error = %e,
                "indexing failed (permanent: retries fail until the cause is fixed; records \
                 given up cost index freshness only, conditions read past the watermark)"
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_database_gets_its_share_of_what_is_left() {
        let s = Duration::from_secs;
        for (remaining, left, share) in [
            (s(40), 1, s(40)),
            (s(40), 4, s(10)),
            // The first took less than its share: the rest is shared.
            (s(36), 3, s(12)),
            (s(0), 2, s(0)),
            (s(40), 0, s(40)),
        ] {
            assert_eq!(budget_share(remaining, left), share, "{remaining:?} {left}");
        }
    }

    #[test]
    fn how_far_is_far_enough() {
        let progress = |watermark, head, cut_short| IndexProgress {
            watermark,
            head,
            active: true,
            cut_short,
            ..Default::default()
        };
        let gone = IndexProgress::default();
        for (p, highest, enough) in [
            (progress(9, 9, false), 9, true),
            // The head moved on past the batch: caught up with it.
            (progress(12, 12, false), 9, true),
            // Cut short, but past the batch's records.
            (progress(10, 12, true), 9, true),
            (progress(9, 12, true), 9, true),
            (progress(8, 12, true), 9, false),
            (progress(0, 12, true), 9, false),
            // Deleted: nothing to index.
            (gone, 9, true),
        ] {
            assert_eq!(indexed_far_enough(&p, highest), enough, "{p:?} {highest}");
        }
    }

    #[test]
    fn store_errors_are_told_apart() {
        for (error, kind) in [
            (
                StoreError::Unavailable("ThrottlingException".into()),
                FailureKind::Transient,
            ),
            (
                StoreError::Misconfigured("AccessDeniedException".into()),
                FailureKind::Permanent,
            ),
            (
                StoreError::Fault("stored event 3 has no stream".into()),
                FailureKind::Permanent,
            ),
        ] {
            assert_eq!(failure_kind(&error), kind, "{error}");
        }
    }
}
