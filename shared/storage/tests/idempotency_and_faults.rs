//! Durable idempotency, and a crash after each DynamoDB call of a commit.

mod common;

use common::*;
use evidentsource_domain::{AppendCondition, ErrorCode, Selector};
use evidentsource_storage::Store;

#[tokio::test]
async fn a_retried_transaction_returns_the_first_result_and_writes_nothing() {
    let store = store().await;
    let name = new_db();
    store.create_database(&name).await.unwrap();
    let unique = vec![AppendCondition::max(Selector::SubjectEquals("alice".into()), 0).to_proto()];
    let t = tx(
        &name,
        vec![event("1", "users", Some("alice"), "registered", 10)],
        unique,
        "register-alice",
    );
    let first = store.transact(&t).await.unwrap();
    // The retry would now fail its own uniqueness condition: idempotency
    // is checked first.
    let again = store.transact(&t).await.unwrap();
    assert_eq!(again, first);
    // Through another process (no cache) too.
    let other = Store::new(store.client().clone(), store.config().clone());
    assert_eq!(other.transact(&t).await.unwrap(), first);
    assert_eq!(store.get_database(&name).await.unwrap().revision, 1);

    // The same id for a different transaction is refused.
    let different = tx(
        &name,
        vec![event("2", "users", Some("bob"), "registered", 10)],
        vec![],
        "register-alice",
    );
    let err = store.transact(&different).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.to_string().contains("transaction_id"), "{err}");
    assert_eq!(store.get_database(&name).await.unwrap().revision, 1);
}

/// The calls a commit with a transaction id and a condition makes: Query
/// head and watermark, then side by side GetItem transaction record and
/// Query chunks (nothing is indexed), then TransactWriteItems. A crash
/// after each leaves either the whole transaction or nothing, and the
/// retry settles it exactly once.
#[tokio::test]
async fn a_crash_after_any_call_leaves_no_partial_transaction() {
    let setup = store().await;
    let table = setup.config().table_name.clone();
    for fail_after in 1..=4 {
        let name = new_db();
        setup.create_database(&name).await.unwrap();
        let seed: Vec<_> = (0..3)
            .map(|i| event(&format!("s{i}"), "orders", None, "placed", 10))
            .collect();
        setup.transact(&tx(&name, seed, vec![], "")).await.unwrap();

        let events: Vec<_> = (0..5)
            .map(|i| event(&format!("e{i}"), "orders", Some("o-9"), "placed", 300))
            .collect();
        let condition =
            vec![AppendCondition::max(Selector::SubjectEquals("o-9".into()), 0).to_proto()];
        let t = tx(&name, events.clone(), condition, "crash-test");

        let (crashing, calls) = store_failing_after(&table, fail_after);
        let result = crashing.transact(&t).await;
        assert!(
            result.is_err(),
            "call {fail_after} failed, so must the commit"
        );
        assert!(calls.load(std::sync::atomic::Ordering::SeqCst) >= fail_after);

        let db = setup.get_database(&name).await.unwrap();
        let stored = setup.read_events(&name, 1, 100).await.unwrap();
        assert_eq!(
            stored.len() as u64,
            db.revision,
            "contiguous, nothing half-written"
        );
        let committed = db.revision == 8;
        assert!(
            db.revision == 3 || committed,
            "all or nothing: revision {}",
            db.revision
        );
        assert_eq!(
            committed,
            fail_after == 4,
            "only a crash after the write leaves it committed"
        );

        // The caller retries with the same transaction id (a new process).
        let retry = Store::new(setup.client().clone(), setup.config().clone());
        let summary = retry.transact(&t).await.unwrap();
        assert_eq!((summary.basis, summary.revision), (3, 8));
        let stored = setup.read_events(&name, 1, 100).await.unwrap();
        assert_eq!(stored.len(), 8, "committed exactly once");
        assert_eq!(
            stored[3..]
                .iter()
                .map(|e| e.event.clone())
                .collect::<Vec<_>>(),
            events
        );
    }
}
