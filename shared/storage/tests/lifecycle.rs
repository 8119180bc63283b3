//! Create, transact, read, delete and re-create against moto.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use evidentsource_domain::ErrorCode;
use evidentsource_storage::StoreError;

fn code(e: StoreError) -> ErrorCode {
    e.code()
}

#[tokio::test]
async fn create_transact_read_delete_recreate() {
    let store = store().await;
    let name = new_db();

    let created = store.create_database(&name).await.unwrap();
    assert_eq!((created.basis, created.revision), (0, 0));
    assert_eq!(created.created_at, created.revision_timestamp);
    assert_eq!(
        code(store.create_database(&name).await.unwrap_err()),
        ErrorCode::AlreadyExists
    );
    assert_eq!(store.get_database(&name).await.unwrap(), created);

    let b1 = store
        .transact(&tx(
            &name,
            (0..3)
                .map(|i| event(&format!("a{i}"), "orders", None, "placed", 50))
                .collect(),
            vec![],
            "t1",
        ))
        .await
        .unwrap();
    assert_eq!((b1.basis, b1.revision, b1.event_count), (0, 3, 3));
    let b2 = store
        .transact(&tx(
            &name,
            vec![event("b0", "payments", Some("p-1"), "paid", 10)],
            vec![],
            "",
        ))
        .await
        .unwrap();
    assert_eq!((b2.basis, b2.revision, b2.event_count), (3, 4, 1));
    assert_ne!(b1.id, b2.id);

    let db = store.get_database(&name).await.unwrap();
    assert_eq!((db.basis, db.revision), (3, 4));
    assert_eq!(db.revision_timestamp, b2.recorded_time);

    let events = store.read_events(&name, 1, 100).await.unwrap();
    let ids: Vec<_> = events
        .iter()
        .map(|e| (e.revision, e.event.id.as_str()))
        .collect();
    assert_eq!(ids, [(1, "a0"), (2, "a1"), (3, "a2"), (4, "b0")]);
    let middle = store.read_events(&name, 2, 3).await.unwrap();
    assert_eq!(
        middle.iter().map(|e| e.revision).collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(
        code(store.read_events(&name, 0, 3).await.unwrap_err()),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(store.read_events(&name, 3, 2).await.unwrap_err()),
        ErrorCode::InvalidArgument
    );
    assert!(store.read_events(&name, 5, 9).await.unwrap().is_empty());

    let deleted = store.delete_database(&name).await.unwrap();
    assert_eq!(deleted, db, "delete returns the final state");
    for result in [
        store.get_database(&name).await,
        store.delete_database(&name).await,
    ] {
        assert_eq!(code(result.unwrap_err()), ErrorCode::NotFound);
    }
    let after = store
        .transact(&tx(
            &name,
            vec![event("c0", "orders", None, "placed", 1)],
            vec![],
            "",
        ))
        .await;
    assert_eq!(code(after.unwrap_err()), ErrorCode::NotFound);
    assert_eq!(
        code(store.read_events(&name, 1, 1).await.unwrap_err()),
        ErrorCode::NotFound
    );

    // Re-created: a fresh sequence from revision 0, none of the old events.
    let again = store.create_database(&name).await.unwrap();
    assert_eq!(again.revision, 0);
    let secs = |d: &evidentsource_proto::Database| d.created_at.map(|t| (t.seconds, t.nanos));
    assert!(secs(&again) >= secs(&created));
    assert!(store.read_events(&name, 1, 10).await.unwrap().is_empty());
    // The old transaction id is not remembered by the new database.
    let b = store
        .transact(&tx(
            &name,
            vec![event("a0", "orders", None, "placed", 1)],
            vec![],
            "t1",
        ))
        .await
        .unwrap();
    assert_eq!((b.basis, b.revision), (0, 1));
    let events = store.read_events(&name, 1, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].event.data,
        event("a0", "orders", None, "placed", 1).data
    );
}

#[tokio::test]
async fn delete_reclaims_the_old_items() {
    // No index grace: everything goes with the delete.
    let store = store_with(|c| c.index_grace = std::time::Duration::ZERO).await;
    let name = new_db();
    store.create_database(&name).await.unwrap();
    for i in 0..5 {
        let events = (0..4)
            .map(|j| event(&format!("{i}-{j}"), "orders", None, "placed", 100))
            .collect();
        store
            .transact(&tx(&name, events, vec![], &format!("t{i}")))
            .await
            .unwrap();
    }
    let table = store.config().table_name.clone();
    let count_items = || async {
        let scan = store
            .client()
            .scan()
            .table_name(&table)
            .send()
            .await
            .unwrap();
        scan.items()
            .iter()
            .map(|i| match &i["pk"] {
                AttributeValue::S(pk) => pk.split('#').next().unwrap_or("").to_owned(),
                _ => String::new(),
            })
            .collect::<Vec<_>>()
    };
    let before = count_items().await;
    assert_eq!(before.iter().filter(|p| *p == "ev").count(), 5);
    assert_eq!(before.iter().filter(|p| *p == "tx").count(), 5);

    store.delete_database(&name).await.unwrap();
    let after = count_items().await;
    assert_eq!(
        after,
        ["db"],
        "only the tombstone head is left (it expires by TTL)"
    );
    let report = store
        .reclaim_pending(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert!(report.queue_empty);

    let head = store.read_head(name.as_str()).await.unwrap().unwrap();
    assert!(!head.is_active());
    assert!(head.ttl.unwrap() > head.deleted_at.unwrap() / 1000);
}

#[tokio::test]
async fn reclaim_pending_finishes_what_a_delete_left() {
    // No time for reclaiming within the delete: all is left to the queue.
    let store = store_with(|c| {
        c.reclaim_budget = std::time::Duration::ZERO;
        c.index_grace = std::time::Duration::ZERO;
    })
    .await;
    let table = store.config().table_name.clone();
    let name = new_db();
    store.create_database(&name).await.unwrap();
    store
        .transact(&tx(
            &name,
            vec![event("x", "orders", None, "t", 10)],
            vec![],
            "t",
        ))
        .await
        .unwrap();
    store.delete_database(&name).await.unwrap();
    let report = store
        .reclaim_pending(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        (report.completed, report.items_deleted, report.queue_empty),
        (1, 2, true)
    );
    let scan = store
        .client()
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    assert_eq!(scan.items().len(), 1, "only the tombstone is left");
}

#[tokio::test]
async fn a_megabyte_transaction_commits_across_chunks() {
    let store = store().await;
    let name = new_db();
    store.create_database(&name).await.unwrap();
    // 8 × 128 KiB = the 1 MiB limit.
    let events: Vec<_> = (0..8)
        .map(|i| event(&format!("big{i}"), "blobs", None, "stored", 128 * 1024))
        .collect();
    let (summary, cost) = store
        .transact_measured(&tx(&name, events.clone(), vec![], "big"))
        .await
        .unwrap();
    assert_eq!(summary.revision, 8);
    assert_eq!(
        cost.chunks, 4,
        "packed by uncompressed size, two 128 KiB events per chunk"
    );
    assert_eq!(cost.write_round_trips, 1);
    let read = store.read_events(&name, 1, 8).await.unwrap();
    assert_eq!(
        read.into_iter().map(|e| e.event).collect::<Vec<_>>(),
        events
    );
}
