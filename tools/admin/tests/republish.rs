//! `republish` against moto and tansu: the publisher runs over the table's
//! stream to one topic; republishing sends the same messages byte for byte
//! (to a fresh topic, or to the same one, where a consumer that
//! de-duplicates on `ce_id` sees no difference); `--from-revision` sends
//! the transactions whose revision is above it; transactions committed
//! before the recorded time was kept are refused.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use evidentsource_admin::republish::RepublishError;
use evidentsource_database_events::DatabaseEvent;
use evidentsource_domain::DatabaseName;
use evidentsource_local_servers::unique_name;
use evidentsource_storage::Store;

fn name(prefix: &str) -> DatabaseName {
    DatabaseName::parse(unique_name(prefix)).unwrap()
}

/// Created, then transactions of these event counts and sizes.
async fn database(store: &Store, prefix: &str, transactions: &[(usize, usize)]) -> DatabaseName {
    let db = name(prefix);
    store.create_database(&db).await.unwrap();
    for (i, (n, size)) in transactions.iter().enumerate() {
        store
            .transact(&transaction(&db, *n, *size, &format!("t{i}")))
            .await
            .unwrap();
    }
    db
}

async fn chunk_items(
    store: &Store,
    db: &str,
) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    let head = store.read_head(db).await.unwrap().unwrap();
    store
        .client()
        .query()
        .table_name(&store.config().table_name)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            AttributeValue::S(format!("ev#{}#{}", head.name, head.incarnation)),
        )
        .projection_expression("sk, n, b, t")
        .send()
        .await
        .unwrap()
        .items()
        .to_vec()
}

/// The transactions' revisions in `events`.
fn revisions(events: &[DatabaseEvent]) -> Vec<(u64, u64)> {
    events
        .iter()
        .map(|e| match e {
            DatabaseEvent::Transacted(b) => (b.basis, b.revision),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republished_events_equal_the_originals_byte_for_byte() {
    let (store, stream_arn) = table().await;
    // The second transaction spans several chunks (about 800 KB of data).
    let accounts = database(&store, "accounts", &[(2, 100), (4, 200 * 1024), (1, 10)]).await;
    let chunks = chunk_items(&store, accounts.as_str()).await;
    assert!(chunks.len() > 3, "{} chunks", chunks.len());
    assert_eq!(
        chunks.iter().filter(|c| c.contains_key("t")).count(),
        3,
        "each transaction's first chunk, and only it, keeps its recorded time"
    );
    let gone = database(&store, "gone", &[(1, 10)]).await;
    store.delete_database(&gone).await.unwrap();

    let original = topic("original").await;
    publish_stream(&stream_arn, &original).await;
    let published = read_all(&original).await;
    let originals = of(&published, accounts.as_str());
    assert_eq!(originals.len(), 4, "Created and three Transacted");
    let deleted = of(&published, gone.as_str());
    assert_eq!(deleted.len(), 3, "Created, Transacted, Deleted");

    // To a fresh topic: the same messages, byte for byte.
    let fresh = topic("republished").await;
    let to_fresh = republisher(&store, &fresh);
    assert_eq!(
        to_fresh.republish(accounts.as_str(), None).await.unwrap(),
        4
    );
    assert_eq!(to_fresh.republish(gone.as_str(), None).await.unwrap(), 1);
    let again = read_all(&fresh).await;
    assert_eq!(of(&again, accounts.as_str()), originals);
    assert_eq!(
        of(&again, gone.as_str()),
        deleted[2..],
        "the tombstone's Deleted"
    );

    // To the same topic: a consumer that de-duplicates on ce_id sees the
    // original run.
    let to_same = republisher(&store, &original);
    to_same.republish(accounts.as_str(), None).await.unwrap();
    let both = read_all(&original).await;
    assert_eq!(of(&both, accounts.as_str()).len(), 8);
    assert_eq!(deduplicated(&both, accounts.as_str()), originals);

    let missing = to_same
        .republish("no-such-database", None)
        .await
        .unwrap_err();
    assert!(matches!(missing, RepublishError::NotFound(_)), "{missing}");
    assert_eq!(missing.exit_code(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_revision_sends_the_transactions_ending_after_it() {
    let (store, stream_arn) = table().await;
    // Revisions 1-2, 3-5 (over several chunks), 6.
    let db = database(&store, "from", &[(2, 10), (3, 200 * 1024), (1, 10)]).await;
    let r = republisher(&store, "unused");
    for (from, expected) in [
        (0, vec![(0, 2), (2, 5), (5, 6)]),
        (1, vec![(0, 2), (2, 5), (5, 6)]),
        (2, vec![(2, 5), (5, 6)]),
        (3, vec![(2, 5), (5, 6)]),
        (4, vec![(2, 5), (5, 6)]),
        (5, vec![(5, 6)]),
        (6, vec![]),
        (100, vec![]),
    ] {
        let events = r.plan(db.as_str(), Some(from)).await.unwrap();
        assert_eq!(revisions(&events), expected, "--from-revision {from}");
    }

    let original = topic("original").await;
    publish_stream(&stream_arn, &original).await;
    let originals = of(&read_all(&original).await, db.as_str());
    assert_eq!(originals.len(), 4);
    let fresh = topic("from").await;
    let sent = republisher(&store, &fresh)
        .republish(db.as_str(), Some(3))
        .await
        .unwrap();
    assert_eq!(sent, 2);
    assert_eq!(of(&read_all(&fresh).await, db.as_str()), originals[2..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_without_a_recorded_time_are_refused() {
    let (store, _) = table().await;
    let db = database(&store, "old", &[(2, 10), (1, 10), (1, 10)]).await;
    let r = republisher(&store, "unused");
    let before = r.plan(db.as_str(), None).await.unwrap();
    // As a commit from before the table kept `t` left them.
    let head = store.read_head(db.as_str()).await.unwrap().unwrap();
    for first in [1, 4] {
        store
            .client()
            .update_item()
            .table_name(&store.config().table_name)
            .key(
                "pk",
                AttributeValue::S(format!("ev#{}#{}", head.name, head.incarnation)),
            )
            .key("sk", AttributeValue::S(format!("{first:020}")))
            .update_expression("REMOVE t")
            .send()
            .await
            .unwrap();
    }
    let refused = r.plan(db.as_str(), None).await.unwrap_err();
    assert!(
        matches!(refused, RepublishError::NotRecorded { revision: 2, .. }),
        "{refused}"
    );
    assert_eq!(refused.exit_code(), 1);
    // Nothing is sent for a refused database.
    let fresh = topic("refused").await;
    assert!(
        republisher(&store, &fresh)
            .republish(db.as_str(), None)
            .await
            .is_err()
    );
    assert!(read_all(&fresh).await.is_empty());
    // From where the table keeps them; the last transaction's time is the
    // head's.
    assert_eq!(r.plan(db.as_str(), Some(2)).await.unwrap(), before[2..]);
}
