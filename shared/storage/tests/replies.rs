//! Recorded replies of async commands: written with the change they answer,
//! first one wins, and a crash never separates the two.

mod common;

use std::time::Duration;

use common::*;
use evidentsource_domain::{Error, ErrorCode};
use evidentsource_proto::{CommandError, CommandResponse, command_response::Result as Outcome};
use evidentsource_storage::{Replied, ReplySlot, Store};

fn slot(id: &str, fingerprint: u8) -> ReplySlot {
    ReplySlot {
        correlation_id: id.to_owned(),
        fingerprint: vec![fingerprint; 16],
        source: "https://x/async-commands".into(),
        ttl: Duration::from_secs(3600),
        traceparent: None,
        tracestate: None,
    }
}

fn refusal(message: &str) -> CommandResponse {
    CommandResponse {
        result: Some(Outcome::Error(CommandError {
            code: 2,
            message: message.into(),
        })),
    }
}

fn other_process(store: &Store) -> Store {
    Store::new(store.client().clone(), store.config().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_executions_of_one_command_change_once_and_share_one_reply() {
    let store = store().await;
    let twin = other_process(&store);

    let name = new_db();
    let s = slot(&unique_id("create"), 1);
    let (a, b) = tokio::join!(
        store.create_database_replying(&name, &s),
        twin.create_database_replying(&name, &s)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let recorded = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Replied::Recorded(_)))
        .count();
    // One recorded it; the other found it (or, had it lost the race for the
    // head item first, would have been refused, which the processor never
    // sees because it reads the reply first).
    assert_eq!(recorded, 1, "{a:?} {b:?}");
    assert_eq!(a.reply(), b.reply());
    assert_eq!(
        store.read_reply(&s.correlation_id).await.unwrap().as_ref(),
        Some(a.reply())
    );

    let s = slot(&unique_id("tx"), 2);
    let t = tx(
        &name,
        vec![event("1", "orders", None, "placed", 10)],
        vec![],
        "",
    );
    let (a, b) = tokio::join!(
        store.transact_replying(&t, &s),
        twin.transact_replying(&t, &s)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.reply(), b.reply());
    assert_eq!(
        store.get_database(&name).await.unwrap().revision,
        1,
        "committed once"
    );
    match a.into_reply().decode_response().unwrap().result {
        Some(Outcome::BatchSummary(summary)) => {
            assert_eq!((summary.basis, summary.revision), (0, 1))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_first_recorded_reply_wins() {
    let store = store().await;
    let s = slot(&unique_id("refused"), 3);
    let first = store
        .record_reply(&s, Some("db"), &refusal("first"))
        .await
        .unwrap();
    let second = other_process(&store)
        .record_reply(&s, None, &refusal("second"))
        .await
        .unwrap();
    assert!(matches!(first, Replied::Recorded(_)));
    assert_eq!(second, Replied::Earlier(first.reply().clone()));
    assert_eq!(first.reply().subject.as_deref(), Some("db"));
}

#[tokio::test]
async fn a_crash_around_a_replying_commit_leaves_change_and_reply_together() {
    let store = store().await;
    let table = store.config().table_name.clone();
    // A condition-free transact_replying without a transaction id makes two
    // calls (the head, then the write); crash after each.
    for fail_after in 1..=2 {
        let name = new_db();
        store.create_database(&name).await.unwrap();
        let s = slot(&unique_id("crash"), 4);
        let t = tx(
            &name,
            vec![event("1", "orders", None, "placed", 10)],
            vec![],
            "",
        );
        let (crashing, _) = store_failing_after(&table, fail_after);
        let outcome = crashing.transact_replying(&t, &s).await;
        let revision = store.get_database(&name).await.unwrap().revision;
        let reply = store.read_reply(&s.correlation_id).await.unwrap();
        match outcome {
            Ok(replied) => assert_eq!(Some(replied.reply()), reply.as_ref()),
            Err(e) => assert!(e.is_transient(), "{e}"),
        }
        assert_eq!(
            reply.is_some(),
            revision == 1,
            "crash after call {fail_after}: reply and commit together"
        );
        // What the processor does on the re-delivery.
        if reply.is_none() {
            store.transact_replying(&t, &s).await.unwrap();
        }
        assert_eq!(store.get_database(&name).await.unwrap().revision, 1);
    }

    // Create (one call) and delete (head, then the write) likewise.
    let name = new_db();
    let s = slot(&unique_id("crash-create"), 9);
    let (crashing, _) = store_failing_after(&table, 1);
    assert!(crashing.create_database_replying(&name, &s).await.is_err());
    assert!(store.read_reply(&s.correlation_id).await.unwrap().is_some());
    assert!(
        store.get_database(&name).await.is_ok(),
        "created with its reply"
    );
    for fail_after in 1..=2 {
        let s = slot(&unique_id("crash-delete"), 10);
        let (crashing, _) = store_failing_after(&table, fail_after);
        let _ = crashing.delete_database_replying(&name, &s).await;
        let reply = store.read_reply(&s.correlation_id).await.unwrap();
        let exists = store.get_database(&name).await.is_ok();
        assert_eq!(reply.is_some(), !exists, "crash after call {fail_after}");
    }
    assert!(store.get_database(&name).await.is_err(), "deleted once");
}

#[tokio::test]
async fn refusals_are_errors_for_the_caller_to_record() {
    let store = store().await;
    let missing = new_db();
    let s = slot(&unique_id("missing"), 5);
    let e = store
        .delete_database_replying(&missing, &s)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);
    assert_eq!(store.read_reply(&s.correlation_id).await.unwrap(), None);
    let _: Error = e.to_domain();

    // A create whose name is taken is ALREADY_EXISTS, not a reply.
    let name = new_db();
    store.create_database(&name).await.unwrap();
    let e = store
        .create_database_replying(&name, &slot(&unique_id("dup"), 6))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::AlreadyExists);

    // A delete with a reply: the final state, recorded.
    let replied = store
        .delete_database_replying(&name, &slot(&unique_id("del"), 7))
        .await
        .unwrap();
    match replied.reply().decode_response().unwrap().result {
        Some(Outcome::Database(db)) => assert_eq!(db.name, name.as_str()),
        other => panic!("{other:?}"),
    }
}

fn unique_id(prefix: &str) -> String {
    evidentsource_local_servers::unique_name(prefix)
}

#[tokio::test]
async fn throttled_or_conflicting_transactions_are_transient_and_record_nothing() {
    let store = store().await;
    let table = store.config().table_name.clone();
    let name = new_db();
    store.create_database(&name).await.unwrap();
    for reasons in [
        &["None", "ThrottlingError"][..],
        &["ProvisionedThroughputExceeded", "None", "None"],
        &["TransactionConflict", "None"],
    ] {
        let cancelling = store_cancelling_transactions(&table, reasons, 3);
        let s = slot(&unique_id("cancelled"), 8);
        let t = tx(
            &name,
            vec![event("1", "orders", None, "placed", 10)],
            vec![],
            "",
        );
        let outcomes = [
            cancelling.create_database_replying(&new_db(), &s).await,
            cancelling.transact_replying(&t, &s).await,
            cancelling.delete_database_replying(&name, &s).await,
        ];
        for outcome in outcomes {
            let e = outcome.unwrap_err();
            assert!(e.is_transient(), "{reasons:?}: {e}");
        }
        assert_eq!(store.read_reply(&s.correlation_id).await.unwrap(), None);
    }
    assert_eq!(store.get_database(&name).await.unwrap().revision, 0);
}
