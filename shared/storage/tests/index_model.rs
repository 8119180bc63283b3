//! The index read against a brute-force model, in moto: random histories
//! (several commits, streams, subjects with long ones among them, types),
//! indexed up to a point with the rest left as the indexer's lag, and
//! random selectors: the highest matching revision from the index and the
//! tail equals the one found by checking every event. Also across delete
//! and re-create.

mod common;

use std::time::Duration;

use common::{history::*, *};
use evidentsource_domain::{EventFacts, Selector};
use evidentsource_storage::Store;

fn model(history: &History, selector: &Selector, basis: u64) -> Option<u64> {
    history
        .iter()
        .filter(|(r, ..)| *r <= basis)
        .filter(|(_, stream, subject, ty)| {
            selector.matches(&EventFacts {
                stream,
                subject: subject.as_deref(),
                event_type: ty,
            })
        })
        .map(|(r, ..)| *r)
        .max()
}

/// Asserts the index's answer for each selector equals the model's;
/// returns how many were checked.
async fn check(
    store: &Store,
    name: &str,
    history: &History,
    selectors: &[Selector],
    what: &str,
) -> usize {
    let at = store.head_and_watermark(name).await.unwrap().unwrap();
    assert_eq!(at.head.revision, history.len() as u64, "{what}");
    for s in selectors {
        let found = store.highest_matching(&at, s).await.unwrap();
        assert_eq!(found, model(history, s, at.head.revision), "{what}: {s:?}");
    }
    selectors.len()
}

#[tokio::test]
async fn the_index_and_its_tail_answer_as_the_whole_history_would() {
    let store = store().await;
    let subjects = subjects();
    let long = long_value_selectors(&subjects);
    let mut checked = 0;
    for seed in 1..=4u64 {
        let mut rng = Seq(seed);
        let mut random = |n: usize, depth: u32| -> Vec<Selector> {
            (0..n)
                .map(|_| selector(&mut rng, &subjects, depth))
                .collect()
        };
        let (first, second, later) = (random(40, 3), random(40, 3), random(10, 2));
        let mut rng = Seq(seed + 100);
        let name = new_db();
        store.create_database(&name).await.unwrap();
        let mut history = History::new();
        commit_random(&store, &name, &mut rng, &mut history, 6).await;
        // Index what is there, then commit more: the lag (seed 4: none
        // indexed at all).
        if seed != 4 {
            store
                .index_database(name.as_str(), Duration::from_secs(30))
                .await
                .unwrap();
        }
        commit_random(&store, &name, &mut rng, &mut history, 2 + seed as u32 % 3).await;
        let at = store
            .head_and_watermark(name.as_str())
            .await
            .unwrap()
            .unwrap();
        assert!(at.watermark < at.head.revision, "a lag");
        let lagging = format!("seed {seed}, lagging");
        checked += check(&store, name.as_str(), &history, &first, &lagging).await;
        check(&store, name.as_str(), &history, &long, &lagging).await;

        // Fully indexed: the same answers from the index alone.
        store
            .index_database(name.as_str(), Duration::from_secs(30))
            .await
            .unwrap();
        let at = store
            .head_and_watermark(name.as_str())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(at.watermark, at.head.revision);
        let indexed = format!("seed {seed}, indexed");
        checked += check(&store, name.as_str(), &history, &second, &indexed).await;
        check(&store, name.as_str(), &history, &long, &indexed).await;

        // Deleted and created again: the new incarnation starts empty,
        // whatever the old one's index holds.
        store.delete_database(&name).await.unwrap();
        store.create_database(&name).await.unwrap();
        let at = store
            .head_and_watermark(name.as_str())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((at.head.revision, at.watermark), (0, 0));
        let mut fresh = History::new();
        commit_random(&store, &name, &mut rng, &mut fresh, 2).await;
        let recreated = format!("seed {seed}, re-created");
        checked += check(&store, name.as_str(), &fresh, &later, &recreated).await;
    }
    assert_eq!(checked, 4 * 90);
}
