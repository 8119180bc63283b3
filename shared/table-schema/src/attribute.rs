//! Attribute names. Every item has the string key attributes [`PK`] and
//! [`SK`] (their formats are in [`crate::keys`]); the head item's other
//! attributes are the fields of [`crate::HeadItem`] (a test holds the two
//! together).

/// The partition key of every item.
pub const PK: &str = "pk";
/// The sort key of every item.
pub const SK: &str = "sk";
/// Expiry in seconds since the epoch, read by DynamoDB TTL (tombstone head
/// items, recorded replies).
pub const TTL: &str = "ttl";

// The head item (also the reclaim queue entry: `name`, `incarnation`,
// `deleted_at`; the idempotency record: `batch_id`, `basis`, `revision`).

/// The database name.
pub const NAME: &str = "name";
/// [`crate::HeadState`]'s wire string.
pub const STATE: &str = "state";
pub const INCARNATION: &str = "incarnation";
pub const CREATED_AT: &str = "created_at";
pub const BASIS: &str = "basis";
pub const REVISION: &str = "revision";
pub const REVISION_TIME: &str = "revision_time";
pub const BATCH_ID: &str = "batch_id";
pub const DELETED_AT: &str = "deleted_at";
/// The head's recent facts (storage's `recent.rs`).
pub const RECENT: &str = "rf";

/// Every attribute of a head item, in [`crate::HeadItem`]'s field order.
pub const HEAD: [&str; 13] = [
    PK,
    SK,
    NAME,
    STATE,
    INCARNATION,
    CREATED_AT,
    BASIS,
    REVISION,
    REVISION_TIME,
    BATCH_ID,
    DELETED_AT,
    TTL,
    RECENT,
];
