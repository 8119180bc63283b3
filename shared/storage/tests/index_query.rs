//! Query by selector against a brute-force model, in moto: random
//! histories (`common::history`), random selectors, random `from`, `limit`
//! and byte bounds (down to one event a page), with the index not run,
//! lagging, and complete: the pages read one after the other hold exactly
//! the matching events at or below `as_of` from `from` on, in order, with
//! `next_from` null only on the last. Also across delete and re-create
//! (the old incarnation's events never appear).

mod common;

use std::time::Duration;

use common::{history::*, *};
use evidentsource_domain::Selector;
use evidentsource_storage::{QueryBounds, Store};

/// Reads every page of `selector` from `from` and checks them against the
/// model; returns the pages read.
async fn read_all(
    store: &Store,
    name: &str,
    history: &History,
    selector: &Selector,
    from: u64,
    bounds: QueryBounds,
    what: &str,
) -> usize {
    let mut next = Some(from);
    let mut found: Vec<u64> = Vec::new();
    let mut pages = 0;
    let mut as_of = 0;
    while let Some(start) = next {
        let page = store.query(name, selector, start, bounds).await.unwrap();
        pages += 1;
        as_of = page.as_of;
        assert!(page.events.len() <= bounds.limit, "{what}: {selector:?}");
        // A byte bound of 1 leaves room for the one event a page always has.
        if bounds.max_bytes == 1 {
            assert!(page.events.len() <= 1, "{what}: {selector:?}");
        }
        for e in &page.events {
            assert!(e.revision >= start, "{what}: {selector:?}");
            // The body is the event's: its id names its position.
            let (_, stream, subject, ty) = &history[e.revision as usize - 1];
            assert_eq!(&e.event.r#type, ty, "{what}");
            assert!(e.event.source.ends_with(&format!("/{stream}")), "{what}");
            let got = e.event.attributes.get("subject").map(|_| ());
            assert_eq!(got.is_some(), subject.is_some(), "{what}");
        }
        found.extend(page.events.iter().map(|e| e.revision));
        if let Some(n) = page.next_from {
            assert!(n > start, "{what}: no progress at {start}: {selector:?}");
        }
        next = page.next_from;
        assert!(pages < 500, "{what}: endless paging: {selector:?}");
    }
    assert_eq!(as_of, history.len() as u64, "{what}");
    assert_eq!(
        found,
        matching(history, selector, from..=as_of),
        "{what}: {selector:?} from {from} {bounds:?}"
    );
    pages
}

/// Random (from, bounds): mostly roomy pages, some of one or two events,
/// some cut by bytes alone.
fn bounds(rng: &mut Rng, len: u64) -> (u64, QueryBounds) {
    let from = match rng.next() % 3 {
        0 => 1,
        _ => 1 + rng.next() % (len + 2),
    };
    let (limit, max_bytes) = match rng.next() % 6 {
        0 => (1 + (rng.next() % 2) as usize, usize::MAX),
        1 => (1000, 1),
        _ => (3 + (rng.next() % 20) as usize, usize::MAX),
    };
    (from, QueryBounds { limit, max_bytes })
}

/// Checks each selector with random bounds; returns the pages read.
async fn check(
    store: &Store,
    name: &str,
    history: &History,
    selectors: &[Selector],
    rng: &mut Rng,
    what: &str,
) -> usize {
    let mut pages = 0;
    for s in selectors {
        let (from, b) = bounds(rng, history.len() as u64);
        pages += read_all(store, name, history, s, from, b, what).await;
    }
    pages
}

/// More values than a page merges: answered by the chunk scan.
fn many_values() -> Selector {
    Selector::Or(
        (0..70)
            .map(|i| Selector::StreamEquals(format!("{}{i}", STREAMS[i % 3])))
            .chain(STREAMS.map(|s| Selector::StreamEquals(s.into())))
            .collect(),
    )
}

#[tokio::test]
async fn pages_of_a_query_hold_exactly_the_matching_events() {
    let store = store().await;
    let subjects = subjects();
    let mut fixed = long_value_selectors(&subjects);
    fixed.push(many_values());
    // A broad subject prefix: the prefix cursor keeps only a page's worth.
    fixed.push(Selector::SubjectStartsWith("o-".into()));
    fixed.push(Selector::Or(vec![
        Selector::SubjectStartsWith("o-1".into()),
        Selector::EventTypeEquals("org.b.noted".into()),
    ]));
    let mut pages = 0;
    for seed in 1..=2u64 {
        let mut rng = Rng::new(&format!("query selectors {seed}"));
        let mut random = |n: usize| -> Vec<Selector> {
            (0..n).map(|_| selector(&mut rng, &subjects, 3)).collect()
        };
        let (none, lagging, indexed, later) = (random(6), random(12), random(12), random(5));
        let mut rng = Rng::new(&format!("query history {seed}"));
        let name = new_db();
        let db = name.as_str();
        store.create_database(&name).await.unwrap();
        let mut history = History::new();
        commit_random(&store, &name, &mut rng, &mut history, 5).await;

        // Not indexed at all: the chunks answer.
        pages += check(&store, db, &history, &none, &mut rng, "not indexed").await;

        // Indexed, then more commits: the index and its tail.
        store
            .index_database(db, Duration::from_secs(30))
            .await
            .unwrap();
        commit_random(&store, &name, &mut rng, &mut history, 2 + seed as u32 % 2).await;
        let at = store.head_and_watermark(db).await.unwrap().unwrap();
        assert!(0 < at.watermark && at.watermark < at.head.revision, "a lag");
        let what = format!("seed {seed}, lagging");
        pages += check(&store, db, &history, &lagging, &mut rng, &what).await;
        // The fixed selectors once with a lag, once without (time in moto).
        if seed == 1 {
            pages += check(&store, db, &history, &fixed, &mut rng, &what).await;
        }

        // Fully indexed: the index alone.
        store
            .index_database(db, Duration::from_secs(30))
            .await
            .unwrap();
        let at = store.head_and_watermark(db).await.unwrap().unwrap();
        assert_eq!(at.watermark, at.head.revision);
        let what = format!("seed {seed}, indexed");
        pages += check(&store, db, &history, &indexed, &mut rng, &what).await;
        if seed == 2 {
            pages += check(&store, db, &history, &fixed, &mut rng, &what).await;
        }

        // Deleted and created again, indexed: the old incarnation's events
        // and index never answer.
        store.delete_database(&name).await.unwrap();
        store.create_database(&name).await.unwrap();
        let mut fresh = History::new();
        commit_random(&store, &name, &mut rng, &mut fresh, 2).await;
        store
            .index_database(db, Duration::from_secs(30))
            .await
            .unwrap();
        let what = format!("seed {seed}, re-created");
        pages += check(&store, db, &fresh, &later, &mut rng, &what).await;
        let all = Selector::StreamStartsWith(String::new());
        let limit = QueryBounds {
            limit: 1000,
            max_bytes: usize::MAX,
        };
        pages += read_all(&store, db, &fresh, &all, 1, limit, &what).await;
    }
    assert!(pages > 100, "{pages} pages");
}

#[tokio::test]
async fn a_missing_database_and_bad_bounds_are_refused_with_codes() {
    use evidentsource_domain::ErrorCode;
    use evidentsource_storage::StoreError;
    let store = store().await;
    let name = new_db();
    let s = Selector::StreamEquals("orders".into());
    let b = QueryBounds {
        limit: 10,
        max_bytes: usize::MAX,
    };
    let code = |r: Result<_, StoreError>| match r {
        Err(StoreError::Rejected(e)) => (e.code, e.field),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        code(store.query(name.as_str(), &s, 1, b).await),
        (ErrorCode::NotFound, None)
    );
    store.create_database(&name).await.unwrap();
    // Nothing matches: an empty page, not an error.
    let page = store.query(name.as_str(), &s, 1, b).await.unwrap();
    assert_eq!(
        (page.as_of, page.events.len(), page.next_from),
        (0, 0, None)
    );
    for (from, limit, field) in [(0, 10, "from"), (1, 0, "limit"), (1, 1001, "limit")] {
        let r = store
            .query(name.as_str(), &s, from, QueryBounds { limit, ..b })
            .await;
        assert_eq!(
            code(r),
            (ErrorCode::InvalidArgument, Some(field.to_owned()))
        );
    }
    store.delete_database(&name).await.unwrap();
    assert_eq!(
        code(store.query(name.as_str(), &s, 1, b).await).0,
        ErrorCode::NotFound
    );
}
