//! The storage layer: one DynamoDB table holding every database.
//!
//! Item layout and commit protocol are described in `docs/storage.md`. In
//! short: a **head item** per database (`pk = db#{name}`, `sk = head`) is the
//! serialization point and the only item the stream publisher reads; it
//! changes exactly once per creation, committed transaction and deletion.
//! Events are packed into compressed **chunk items** under the database's
//! incarnation; a transaction is one `TransactWriteItems` (head update
//! conditioned on the basis, chunk puts, idempotency record), so it is
//! visible wholly or not at all.

mod attempt;
mod attr;
mod backoff;
mod batch;
mod cancellation;
mod chunk;
mod commit;
mod conditions;
pub mod connect;
mod deadline;
mod error;
mod facts;
mod heads;
mod idempotency;
pub mod index;
mod lanes;
mod lifecycle;
mod plan;
mod read;
mod recent;
mod reclaim;
mod recorded;
pub mod reply;
pub mod size;
mod store;
pub mod table;

pub(crate) use evidentsource_table_schema::{attribute, keys};
/// The head item and what its image means: the table's schema, shared
/// with the stream publisher (`evidentsource-table-schema`).
pub use evidentsource_table_schema::{head, timestamp_from_millis};

pub use chunk::pack_events;
pub use connect::{StorageEnv, dynamodb_client, store_from_env};
pub use deadline::Deadline;
pub use error::StoreError;
pub use head::{HeadError, HeadItem, HeadState};
pub use index::query::{DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT, QueryBounds, QueryPage};
pub use plan::CommitPlanSummary;
pub use read::StoredEvent;
/// The most bytes of recent facts a head carries (docs/storage.md).
pub use recent::MAX_BYTES as RECENT_FACTS_MAX_BYTES;
pub use reclaim::ReclaimReport;
pub use recorded::RecordedBatch;
pub use reply::{Replied, Reply, ReplySlot};
pub use store::{Store, StoreConfig};

pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
