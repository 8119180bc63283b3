//! Key formats. Every item has a string partition key `pk` and sort key `sk`.

/// Sort key of the head item.
pub const HEAD_SK: &str = "head";
/// Partition key of the reclaim queue.
pub const GC_PK: &str = "gc";

/// `db#{name}`: the head item's partition.
pub fn head_pk(name: &str) -> String {
    format!("db#{name}")
}

/// `ev#{name}#{incarnation}`: the chunks of one incarnation.
pub fn events_pk(name: &str, incarnation: &str) -> String {
    format!("ev#{name}#{incarnation}")
}

/// `tx#{name}#{incarnation}`: the idempotency records of one incarnation.
pub fn tx_pk(name: &str, incarnation: &str) -> String {
    format!("tx#{name}#{incarnation}")
}

/// A chunk's sort key: its first revision, zero-padded so that string
/// order is numeric order.
pub fn chunk_sk(first_revision: u64) -> String {
    format!("{first_revision:020}")
}

/// The reclaim queue's sort key for one dead incarnation.
pub fn gc_sk(name: &str, incarnation: &str) -> String {
    format!("{name}#{incarnation}")
}

/// Sort key of a recorded async-command reply.
pub const REPLY_SK: &str = "reply";

/// `reply#{correlation_id}`: the recorded response to one async command.
pub fn reply_pk(correlation_id: &str) -> String {
    format!("reply#{correlation_id}")
}
