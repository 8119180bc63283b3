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

/// The calls a commit with a transaction id and a condition makes. Cold
/// (a process that has not seen the database): Query head and watermark,
/// Query chunks (nothing is indexed; not when the head's recent facts
/// rule them out), TransactWriteItems. Warm (the process
/// created the database and committed the rest): TransactWriteItems only.
/// A crash after each leaves either the whole transaction or nothing, and
/// the retry settles it exactly once, from a new process or the same one.
#[tokio::test]
async fn a_crash_after_any_call_leaves_no_partial_transaction() {
    let setup = store().await;
    let table = setup.config().table_name.clone();
    // (warm, calls before the commit's, the commit's calls, whether a
    // condition makes the cold commit read the chunks past the watermark)
    for (warm, before, calls, chunks) in [
        (false, 0, 3, true),
        (false, 0, 2, false),
        (true, 2, 1, true),
    ] {
        for fail_after in before + 1..=before + calls {
            let name = new_db();
            let (crashing, made) = store_failing_after(&table, fail_after);
            let seeding = if warm { &crashing } else { &setup };
            seeding.create_database(&name).await.unwrap();
            let seed: Vec<_> = (0..3)
                .map(|i| event(&format!("s{i}"), "orders", None, "placed", 10))
                .collect();
            seeding
                .transact(&tx(&name, seed, vec![], ""))
                .await
                .unwrap();

            let events: Vec<_> = (0..5)
                .map(|i| event(&format!("e{i}"), "orders", Some("o-9"), "placed", 300))
                .collect();
            // The second condition holds through the seed's events, which
            // the head's recent facts may match: the cold commit reads the
            // chunks past the watermark. Without it they rule the chunks
            // out: head and watermark, then the write.
            let mut condition =
                vec![AppendCondition::max(Selector::SubjectEquals("o-9".into()), 0).to_proto()];
            if chunks {
                condition.push(
                    AppendCondition::min(Selector::StreamEquals("orders".into()), 1).to_proto(),
                );
            }
            let t = tx(&name, events.clone(), condition, "crash-test");

            let result = crashing.transact(&t).await;
            let case = format!("warm {warm}, chunks {chunks}, crash after call {fail_after}");
            assert!(result.is_err(), "{case}: so must the commit fail");
            assert_eq!(
                made.load(std::sync::atomic::Ordering::SeqCst),
                fail_after,
                "{case}: the crash ended the commit"
            );

            let db = setup.get_database(&name).await.unwrap();
            let stored = setup.read_events(&name, 1, 100).await.unwrap();
            assert_eq!(
                stored.len() as u64,
                db.revision,
                "{case}: contiguous, nothing half-written"
            );
            let committed = db.revision == 8;
            assert!(
                db.revision == 3 || committed,
                "{case}: all or nothing: revision {}",
                db.revision
            );
            assert_eq!(
                committed,
                fail_after == before + calls,
                "{case}: only a crash after the write leaves it committed"
            );

            // The caller retries with the same transaction id: through a
            // new process, and through the one that crashed (warm: it goes
            // from the head it remembers).
            for retry in [
                Store::new(setup.client().clone(), setup.config().clone()),
                crashing.clone(),
            ] {
                let summary = retry.transact(&t).await.unwrap();
                assert_eq!((summary.basis, summary.revision), (3, 8), "{case}");
            }
            let stored = setup.read_events(&name, 1, 100).await.unwrap();
            assert_eq!(stored.len(), 8, "{case}: committed exactly once");
            assert_eq!(
                stored[3..]
                    .iter()
                    .map(|e| e.event.clone())
                    .collect::<Vec<_>>(),
                events,
                "{case}"
            );
        }
    }
}
