//! The reclaim queue against moto: malformed entries (written by hand, an
//! older release or a bug) are skipped and counted, and every good entry is
//! still reclaimed, also behind more malformed entries than one page holds.

mod common;

use std::{collections::HashMap, time::Duration};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use common::*;
use evidentsource_storage::{Store, StoreConfig};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// A queue entry (`pk = gc`) with these attributes besides the key.
fn entry(sk: &str, attributes: &[(&str, AttributeValue)]) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([("pk".to_owned(), s("gc")), ("sk".to_owned(), s(sk))]);
    for (k, v) in attributes {
        item.insert(k.to_string(), v.clone());
    }
    item
}

async fn plant(store: &Store, items: Vec<HashMap<String, AttributeValue>>) {
    for batch in items.chunks(25) {
        let requests = batch
            .iter()
            .map(|item| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item.clone()))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
            .collect();
        let out = store
            .client()
            .batch_write_item()
            .request_items(&store.config().table_name, requests)
            .send()
            .await
            .unwrap();
        assert!(
            out.unprocessed_items().is_none_or(|u| u.is_empty()),
            "moto left items unprocessed"
        );
    }
}

/// A database with one transaction, deleted without reclaiming (its items
/// are left to the queue): returns its name.
async fn deleted_database(store: &Store) -> String {
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
    name.as_str().to_owned()
}

/// Every item's partition key kind (`db`, `ev`, `tx`, `gc`) and sort key.
async fn items(store: &Store) -> Vec<(String, String)> {
    let scan = store
        .client()
        .scan()
        .table_name(&store.config().table_name)
        .send()
        .await
        .unwrap();
    assert!(scan.last_evaluated_key().is_none(), "one page expected");
    let text = |v: Option<&AttributeValue>| match v {
        Some(AttributeValue::S(s)) => s.clone(),
        other => format!("{other:?}"),
    };
    let mut items: Vec<(String, String)> = scan
        .items()
        .iter()
        .map(|i| {
            let pk = text(i.get("pk"));
            let kind = pk.split('#').next().unwrap_or_default().to_owned();
            (kind, text(i.get("sk")))
        })
        .collect();
    items.sort();
    items
}

#[tokio::test]
async fn malformed_queue_entries_are_skipped_and_counted_and_the_rest_reclaimed() {
    let store = store_with(|c| {
        c.reclaim_budget = Duration::ZERO;
        c.index_grace = Duration::ZERO;
    })
    .await;
    let first = deleted_database(&store).await;
    let second = deleted_database(&store).await;
    // Sort keys before the good entries' (`db-…#…`): read first.
    let malformed = vec![
        entry("0-no-name", &[("incarnation", s("00000000000000aa"))]),
        entry("1-no-incarnation", &[("name", s(&first))]),
        entry(
            "2-name-not-a-string",
            &[
                ("name", AttributeValue::N("7".into())),
                ("incarnation", s("00000000000000aa")),
            ],
        ),
        // Would name another key space: `ev#a#b#c` is `ev#a` + `b#c`.
        entry("a#b#c", &[("name", s("a#b")), ("incarnation", s("c"))]),
        entry(
            "3-empty-incarnation",
            &[("name", s(&first)), ("incarnation", s(""))],
        ),
        // Its queue key is not its own: removing it after reclaiming would
        // remove another entry, or none.
        entry(
            "4-key-mismatch",
            &[("name", s(&second)), ("incarnation", s("00000000000000bb"))],
        ),
    ];
    let planted: Vec<String> = malformed
        .iter()
        .map(|i| match &i["sk"] {
            AttributeValue::S(sk) => sk.clone(),
            _ => unreachable!(),
        })
        .collect();
    plant(&store, malformed).await;

    let report = store
        .reclaim_pending(Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(
        (report.completed, report.malformed, report.queue_empty),
        (2, planted.len(), false),
        "{report:?}"
    );
    // Each database: one chunk and one idempotency record.
    assert_eq!(report.items_deleted, 4, "{report:?}");
    let mut expected: Vec<(String, String)> =
        vec![("db".into(), "head".into()), ("db".into(), "head".into())];
    expected.extend(planted.iter().map(|sk| ("gc".to_owned(), sk.clone())));
    expected.sort();
    assert_eq!(
        items(&store).await,
        expected,
        "the tombstones, and the malformed entries left for a person to look at"
    );

    // The next run finds only them, and says so again.
    let again = store
        .reclaim_pending(Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(
        (
            again.completed,
            again.items_deleted,
            again.malformed,
            again.queue_empty
        ),
        (0, 0, planted.len(), false),
        "{again:?}"
    );
}

#[tokio::test]
async fn good_entries_behind_a_page_of_malformed_ones_are_reached() {
    let store = store_with(|c| {
        c.reclaim_budget = Duration::ZERO;
        c.index_grace = Duration::ZERO;
    })
    .await;
    let name = deleted_database(&store).await;
    // More than one query page (100 entries), all sorted before `db-…`.
    let malformed: Vec<_> = (0..130)
        .map(|i| entry(&format!("0-{i:03}"), &[("name", s(&name))]))
        .collect();
    plant(&store, malformed).await;
    let report = store
        .reclaim_pending(Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        (report.completed, report.items_deleted, report.malformed),
        (1, 2, 130),
        "{report:?}"
    );
    let left = items(&store).await;
    assert!(
        left.iter().all(|(kind, _)| kind == "db" || kind == "gc"),
        "{left:?}"
    );
    assert_eq!(left.iter().filter(|(kind, _)| kind == "gc").count(), 130);
}

#[tokio::test]
async fn index_items_wait_for_the_grace_and_the_queue_entry_for_them() {
    let store = store_with(|c| c.index_grace = Duration::from_secs(3600)).await;
    let name = new_db();
    store.create_database(&name).await.unwrap();
    store
        .transact(&tx(
            &name,
            vec![event("x", "orders", Some("o-1"), "t", 10)],
            vec![],
            "",
        ))
        .await
        .unwrap();
    store
        .index_database(name.as_str(), Duration::from_secs(20))
        .await
        .unwrap();
    let kinds = |items: &[(String, String)]| {
        let mut kinds: Vec<String> = items.iter().map(|(k, _)| k.clone()).collect();
        kinds.dedup();
        kinds
    };
    assert_eq!(kinds(&items(&store).await), ["db", "ev", "ix"]);
    store.delete_database(&name).await.unwrap();
    // Within the grace: the index, its watermark (beside the head) and the
    // queue entry stay; the chunks are gone.
    let report = store
        .reclaim_pending(Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(
        (report.completed, report.queue_empty),
        (0, false),
        "{report:?}"
    );
    let left = items(&store).await;
    assert_eq!(kinds(&left), ["db", "gc", "ix"]);
    assert!(
        left.iter()
            .any(|(k, sk)| k == "db" && sk.starts_with("ix#")),
        "{left:?}"
    );
    // Past it (another process with no grace): everything but the
    // tombstone goes, the queue entry last.
    let (client, table) = (store.client().clone(), store.config().table_name.clone());
    let mut config = StoreConfig::new(table);
    config.index_grace = Duration::ZERO;
    let later = Store::new(client, config);
    let report = later
        .reclaim_pending(Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(
        (report.completed, report.queue_empty),
        (1, true),
        "{report:?}"
    );
    assert_eq!(items(&store).await, [("db".to_owned(), "head".to_owned())]);
}
