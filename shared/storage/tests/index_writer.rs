//! The condition index's writer against moto: what it writes for a history
//! (checked against a model built from the events), that it moves the
//! watermark only past what it wrote, and that repeating its work or
//! indexing a deleted database changes nothing; that a dead incarnation
//! is never given a watermark; that the writer stops in time.

mod common;

use std::{collections::BTreeMap, time::Duration};

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use evidentsource_domain::DatabaseName;
use evidentsource_storage::{
    Deadline,
    index::{
        posting::decode,
        writer::{PIECE, SLICE_EVENTS, SLICE_RESERVE, WatermarkMove},
    },
};
use evidentsource_table_schema::index as keys;

/// Every index item of one incarnation: (pk, sk) → piece (empty for a
/// dictionary item).
async fn index_items(
    store: &evidentsource_storage::Store,
    name: &str,
    incarnation: &str,
) -> BTreeMap<(String, String), Vec<u8>> {
    let mut items = BTreeMap::new();
    for pk in keys::index_pks(name, incarnation) {
        let mut start = None;
        loop {
            let page = store
                .client()
                .query()
                .table_name(&store.config().table_name)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            for item in page.items() {
                let sk = item["sk"].as_s().unwrap().clone();
                let piece = item
                    .get(PIECE)
                    .map(|v| v.as_b().unwrap().as_ref().to_vec())
                    .unwrap_or_default();
                items.insert((pk.clone(), sk), piece);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
    }
    items
}

#[tokio::test]
async fn the_index_holds_every_event_under_each_of_its_values() {
    let store = store().await;
    let name = new_db();
    store.create_database(&name).await.unwrap();
    // 3 commits: subjects o-0..o-4 repeating, two streams, two types, and
    // events without a subject.
    let mut model: Vec<(u64, &str, Option<String>, &str)> = Vec::new();
    let mut revision = 0;
    for commit in 0..3 {
        let mut events = Vec::new();
        for i in 0..40 {
            revision += 1;
            let stream = if i % 3 == 0 { "payments" } else { "orders" };
            let subject = (i % 7 != 0).then(|| format!("o-{}", i % 5));
            let ty = if i % 2 == 0 {
                "com.shop.placed"
            } else {
                "com.shop.paid"
            };
            events.push(event(
                &format!("{commit}-{i}"),
                stream,
                subject.as_deref(),
                ty,
                50,
            ));
            model.push((revision, stream, subject, ty));
        }
        store
            .transact(&tx(&name, events, vec![], ""))
            .await
            .unwrap();
    }
    let head = store.read_head(name.as_str()).await.unwrap().unwrap();

    let progress = store
        .index_database(name.as_str(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        (progress.watermark, progress.head),
        (120, 120),
        "{progress:?}"
    );

    let items = index_items(&store, name.as_str(), &head.incarnation).await;
    // Every (dimension, value) lists exactly the model's revisions.
    let mut found: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for ((pk, sk), piece) in &items {
        if piece.is_empty() {
            continue;
        }
        let (value, first) = sk.rsplit_once(keys::VALUE_END).unwrap();
        for e in decode(first.parse().unwrap(), piece).unwrap() {
            let dimension = pk.rsplit('#').next().unwrap().chars().next().unwrap();
            found
                .entry((dimension.to_string(), value.to_owned()))
                .or_default()
                .push(e.revision);
        }
    }
    let mut expected: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for (revision, stream, subject, ty) in &model {
        if let Some(s) = subject {
            expected
                .entry(("s".into(), s.clone()))
                .or_default()
                .push(*revision);
        }
        expected
            .entry(("t".into(), ty.to_string()))
            .or_default()
            .push(*revision);
        expected
            .entry(("r".into(), stream.to_string()))
            .or_default()
            .push(*revision);
    }
    assert_eq!(found, expected);
    let dictionaries: Vec<&str> = items
        .iter()
        .filter(|(_, piece)| piece.is_empty())
        .map(|((_, sk), _)| sk.as_str())
        .collect();
    // By partition (`…#dr` streams, then `…#dt` types), then value.
    assert_eq!(
        dictionaries,
        ["orders", "payments", "com.shop.paid", "com.shop.placed"]
    );

    // Done: another run writes nothing; a run from scratch (watermark
    // gone) writes the same items.
    let again = store
        .index_database(name.as_str(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!((again.items_written, again.slices), (0, 0));
    store
        .client()
        .delete_item()
        .table_name(&store.config().table_name)
        .key("pk", AttributeValue::S(format!("db#{name}")))
        .key(
            "sk",
            AttributeValue::S(keys::watermark_sk(&head.incarnation)),
        )
        .send()
        .await
        .unwrap();
    let redo = store
        .index_database(name.as_str(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(redo.watermark, 120);
    assert_eq!(
        index_items(&store, name.as_str(), &head.incarnation).await,
        items
    );

    // A deleted database is left alone.
    store.delete_database(&name).await.unwrap();
    let gone = store
        .index_database(name.as_str(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!((gone.items_written, gone.slices), (0, 0));
}

#[tokio::test]
async fn the_watermark_moves_a_slice_at_a_time_and_only_on_chunk_boundaries() {
    let store = store().await;
    let name = new_db();
    store.create_database(&name).await.unwrap();
    // Commits of 900 events: a slice ends inside one and takes it whole.
    let per_commit = 900u64;
    let commits = SLICE_EVENTS / per_commit + 2;
    for c in 0..commits {
        let events = (0..per_commit)
            .map(|i| {
                event(
                    &format!("{c}-{i}"),
                    "orders",
                    Some(&format!("o-{}", i % 50)),
                    "t",
                    10,
                )
            })
            .collect();
        store
            .transact(&tx(&name, events, vec![], ""))
            .await
            .unwrap();
    }
    let total = commits * per_commit;
    // No budget: nothing done.
    let none = store
        .index_database(name.as_str(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((none.slices, none.watermark), (0, 0), "{none:?}");
    assert!(none.active && none.cut_short, "{none:?}");
    // The first slice (to revision 5,000) ends with the commit holding
    // it (at 5,400), the second at the head.
    let all = store
        .index_database(name.as_str(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!((all.slices, all.watermark), (2, total), "{all:?}");
    assert!(!all.cut_short, "{all:?}");
}

/// The watermark item of `incarnation`, if any.
async fn watermark_item(
    store: &evidentsource_storage::Store,
    name: &str,
    incarnation: &str,
) -> Option<u64> {
    let out = store
        .client()
        .get_item()
        .table_name(&store.config().table_name)
        .key("pk", AttributeValue::S(format!("db#{name}")))
        .key("sk", AttributeValue::S(keys::watermark_sk(incarnation)))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item.map(|i| i["w"].as_n().unwrap().parse().unwrap())
}

/// A store on a new table with a database of one committed event.
async fn one_event_database() -> (evidentsource_storage::Store, DatabaseName) {
    let store = store().await;
    let name = new_db();
    store.create_database(&name).await.unwrap();
    let events = vec![event("e-1", "orders", Some("o-1"), "t", 10)];
    store
        .transact(&tx(&name, events, vec![], ""))
        .await
        .unwrap();
    (store, name)
}

/// An indexer that read the head before a delete must not create the dead
/// incarnation's watermark after it (reclaim may have removed it already,
/// and nothing would remove it again): the first write checks the head.
#[tokio::test]
async fn a_first_watermark_write_after_a_delete_creates_nothing() {
    let (store, name) = one_event_database().await;
    let old = store.read_head(name.as_str()).await.unwrap().unwrap();

    store.delete_database(&name).await.unwrap();
    let moved = store.move_watermark(&old, 0, old.revision).await.unwrap();
    assert_eq!(moved, WatermarkMove::Dead);
    assert_eq!(
        watermark_item(&store, name.as_str(), &old.incarnation).await,
        None
    );

    // Created again: another incarnation, still dead for the old one.
    store.create_database(&name).await.unwrap();
    let new = store.read_head(name.as_str()).await.unwrap().unwrap();
    assert_ne!(new.incarnation, old.incarnation);
    let moved = store.move_watermark(&old, 0, old.revision).await.unwrap();
    assert_eq!(moved, WatermarkMove::Dead);
    assert_eq!(
        watermark_item(&store, name.as_str(), &old.incarnation).await,
        None
    );

    // The live incarnation: created once, then moved by compare-and-set.
    let table = [
        (0, 2, WatermarkMove::Moved, Some(2)),
        // Another indexer's first write came first.
        (0, 3, WatermarkMove::Raced, Some(2)),
        (2, 4, WatermarkMove::Moved, Some(4)),
        (2, 5, WatermarkMove::Raced, Some(4)),
    ];
    for (from, to, expected, stored) in table {
        let moved = store.move_watermark(&new, from, to).await.unwrap();
        assert_eq!(moved, expected, "{from} -> {to}");
        assert_eq!(
            watermark_item(&store, name.as_str(), &new.incarnation).await,
            stored,
            "{from} -> {to}"
        );
    }
    // Indexing the database now starts from the new incarnation's own
    // watermark; the old one is still absent.
    assert_eq!(
        watermark_item(&store, name.as_str(), &old.incarnation).await,
        None
    );
}

/// Bound to a deadline nearer than a slice needs, the writer starts no
/// slice (and says it was cut short) instead of running into it.
#[tokio::test]
async fn no_slice_is_started_that_the_deadline_would_cut_off() {
    let (store, name) = one_event_database().await;
    let near = store.with_deadline(Deadline::after(SLICE_RESERVE / 2));
    let progress = near
        .index_database(name.as_str(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        (progress.slices, progress.watermark),
        (0, 0),
        "{progress:?}"
    );
    assert!(progress.cut_short, "{progress:?}");
    let far = store.with_deadline(Deadline::after(SLICE_RESERVE * 4));
    let progress = far
        .index_database(name.as_str(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        (progress.slices, progress.watermark),
        (1, 1),
        "{progress:?}"
    );
    assert!(!progress.cut_short, "{progress:?}");
}
