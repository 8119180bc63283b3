//! 16 concurrent writers × 50 transactions on one database.

mod common;

use std::collections::{HashMap, HashSet};

use common::*;
use evidentsource_domain::{AppendCondition, ErrorCode, Selector};
use evidentsource_storage::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_keep_revisions_contiguous() {
    const WRITERS: usize = 16;
    const PER_WRITER: usize = 50;
    let setup = store().await;
    let name = new_db();
    setup.create_database(&name).await.unwrap();

    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        // One store per writer: separate processes with separate caches.
        let store = Store::new(setup.client().clone(), setup.config().clone());
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..PER_WRITER {
                // Every 5th transaction claims a subject shared by 4 writers:
                // exactly one claim per (group, round) can win.
                let claim = (i % 5 == 0).then(|| format!("claim-{}-{}", w % 4, i));
                let id = format!("w{w}-{i}");
                let mut events = vec![event(
                    &id,
                    &format!("writer{w}"),
                    claim.as_deref(),
                    "wrote",
                    40,
                )];
                if i % 3 == 0 {
                    events.push(event(
                        &format!("{id}-b"),
                        &format!("writer{w}"),
                        None,
                        "wrote",
                        40,
                    ));
                }
                let conditions = claim
                    .iter()
                    .map(|c| AppendCondition::max(Selector::SubjectEquals(c.clone()), 0).to_proto())
                    .collect();
                let t = tx(&name, events, conditions, &id);
                outcomes.push((claim, t.events.len(), store.transact(&t).await));
            }
            outcomes
        }));
    }

    let mut committed = HashMap::new();
    let mut rejected = Vec::new();
    for task in tasks {
        for (claim, len, outcome) in task.await.unwrap() {
            match outcome {
                Ok(summary) => {
                    assert_eq!(summary.revision - summary.basis, len as u64);
                    committed.insert(summary.basis, (summary.revision, claim));
                }
                Err(e) => {
                    assert_eq!(
                        e.code(),
                        ErrorCode::FailedPrecondition,
                        "only true condition failures: {e}"
                    );
                    rejected.push(claim.expect("only claims can be rejected"));
                }
            }
        }
    }

    // Revisions 1..=n contiguous: each commit's basis is the previous revision.
    let head = setup.get_database(&name).await.unwrap();
    let mut next = 0;
    while next < head.revision {
        let (revision, _) = committed
            .get(&next)
            .unwrap_or_else(|| panic!("no commit at basis {next}"));
        next = *revision;
    }
    assert_eq!(next, head.revision);

    // Every committed event present exactly once.
    let mut stored = Vec::new();
    let mut from = 1;
    while from <= head.revision {
        let page = setup.read_events(&name, from, head.revision).await.unwrap();
        from += page.len() as u64;
        stored.extend(page);
    }
    assert_eq!(stored.len() as u64, head.revision);
    let ids: HashSet<_> = stored
        .iter()
        .map(|e| (e.event.source.clone(), e.event.id.clone()))
        .collect();
    assert_eq!(ids.len(), stored.len(), "no event twice");

    // Each claim won exactly once; each rejection was a claim already won.
    let won: Vec<_> = committed.values().filter_map(|(_, c)| c.clone()).collect();
    let won_set: HashSet<_> = won.iter().cloned().collect();
    assert_eq!(won.len(), won_set.len(), "a claim never wins twice");
    assert_eq!(
        won_set.len(),
        4 * (PER_WRITER / 5),
        "every claim was won once"
    );
    for claim in &rejected {
        assert!(won_set.contains(claim), "{claim} rejected but never won");
    }
    assert_eq!(committed.len() + rejected.len(), WRITERS * PER_WRITER);
}
