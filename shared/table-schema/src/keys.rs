//! Key formats. Every item has a string partition key `pk` and sort key `sk`
//! (the names are [`crate::attribute::PK`] and [`crate::attribute::SK`]).

/// Sort key of the head item.
pub const HEAD_SK: &str = "head";
/// Partition key of the reclaim queue.
pub const GC_PK: &str = "gc";
/// What a head item's partition key starts with.
pub const HEAD_PK_PREFIX: &str = "db#";

/// `db#{name}`: the head item's partition.
pub fn head_pk(name: &str) -> String {
    format!("{HEAD_PK_PREFIX}{name}")
}

/// The database name in a head partition key (`db#{name}`); `None` for the
/// key of any other item.
pub fn database_of_head_pk(pk: &str) -> Option<&str> {
    pk.strip_prefix(HEAD_PK_PREFIX)
}

/// Whether `pk` and `sk` are a head item's keys.
pub fn is_head_key(pk: &str, sk: &str) -> bool {
    sk == HEAD_SK && pk.starts_with(HEAD_PK_PREFIX)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_keys_are_told_from_the_others() {
        for (pk, sk, head, database) in [
            (
                head_pk("accounts"),
                HEAD_SK.to_owned(),
                true,
                Some("accounts"),
            ),
            (head_pk("a#b"), HEAD_SK.to_owned(), true, Some("a#b")),
            (head_pk(""), HEAD_SK.to_owned(), true, Some("")),
            (head_pk("accounts"), chunk_sk(1), false, Some("accounts")),
            (events_pk("accounts", "00ff"), chunk_sk(1), false, None),
            (
                events_pk("accounts", "00ff"),
                HEAD_SK.to_owned(),
                false,
                None,
            ),
            (tx_pk("accounts", "00ff"), "t-1".to_owned(), false, None),
            (GC_PK.to_owned(), gc_sk("accounts", "00ff"), false, None),
            (reply_pk("c-1"), REPLY_SK.to_owned(), false, None),
            ("DB#accounts".to_owned(), HEAD_SK.to_owned(), false, None),
        ] {
            assert_eq!(is_head_key(&pk, &sk), head, "{pk} {sk}");
            assert_eq!(database_of_head_pk(&pk), database, "{pk}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(head_pk("accounts"), "db#accounts");
        assert_eq!(events_pk("accounts", "00ff"), "ev#accounts#00ff");
        assert_eq!(tx_pk("accounts", "00ff"), "tx#accounts#00ff");
        assert_eq!(gc_sk("accounts", "00ff"), "accounts#00ff");
        assert_eq!(reply_pk("c-1"), "reply#c-1");
        // String order is numeric order.
        assert_eq!(chunk_sk(42), "00000000000000000042");
        assert!(chunk_sk(9) < chunk_sk(10));
        assert_eq!(chunk_sk(u64::MAX).len(), 20);
    }
}
