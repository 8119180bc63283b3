//! Append conditions decided through real commits, against a brute-force
//! model, in moto: random histories with two writers, random selectors and
//! bounds (`Max`, `Min`, `Range` at random revisions), the indexer run now
//! and then (so it lags by a random amount), never run, or run on a
//! re-created database; now and then a commit wider than a head's recent
//! facts. Every verdict, and on failure the revision quoted,
//! equals checking every event of the history — whichever process
//! decides: one that committed all along (its window holds the whole
//! history), one that started after the last indexing (window past the
//! watermark, index below it), or a cold one (index and chunks only).

mod common;

use std::time::Duration;

use common::{history::*, *};
use evidentsource_domain::{AppendCondition, Bound, DatabaseName, ErrorCode, Selector};
use evidentsource_storage::Store;

fn bound(rng: &mut Rng, head: u64) -> Bound {
    let r = rng.next() % (head + 3);
    match rng.next() % 5 {
        // Mostly the DCB shape: no match after what the writer read.
        0 | 1 => Bound::Max(head.saturating_sub(rng.next() % 4)),
        2 => Bound::Max(r),
        3 => Bound::Min(r),
        _ => {
            let other = rng.next() % (head + 3);
            Bound::Range {
                min: r.min(other),
                max: r.max(other),
            }
        }
    }
}

/// Conditions likely to hold now and then: most about one subject or type
/// (the common DCB shapes; some about a subject of a wide commit, below),
/// the rest random.
fn conditions(rng: &mut Rng, head: u64) -> Vec<AppendCondition> {
    let subjects = subjects();
    (0..1 + rng.next() % 2)
        .map(|_| {
            let selector = match rng.next() % 5 {
                0 => Selector::SubjectEquals(subjects[(rng.next() % 5) as usize].clone()),
                1 => Selector::EventTypeEquals(rng.pick(&TYPES).into()),
                2 => Selector::SubjectEquals(format!("u-{}", 1 + rng.next() % head.max(1))),
                // Conditions refuse empty prefixes (queries take them).
                _ => loop {
                    let s = selector(rng, &subjects, 2);
                    if !has_empty_prefix(&s) {
                        break s;
                    }
                },
            };
            AppendCondition {
                selector,
                bound: bound(rng, head),
            }
        })
        .collect()
}

fn has_empty_prefix(selector: &Selector) -> bool {
    match selector {
        Selector::And(parts) | Selector::Or(parts) => parts.iter().any(has_empty_prefix),
        Selector::SubjectStartsWith(p)
        | Selector::StreamStartsWith(p)
        | Selector::EventTypeStartsWith(p) => p.is_empty(),
        _ => false,
    }
}

/// A wide commit: each event a subject of its own (`u-{revision}`), more
/// of them than a head's recent facts hold, so that what they drop lies
/// past the watermark and must still decide.
fn wide_events(
    rng: &mut Rng,
    history: &History,
    tag: &str,
) -> (Vec<evidentsource_proto::cloudevents::CloudEvent>, History) {
    let n = 34 + rng.next() % 30;
    let (mut events, mut added) = (Vec::new(), History::new());
    for i in 0..n {
        let revision = history.len() as u64 + 1 + i;
        let (stream, subject, ty) = (
            rng.pick(&STREAMS),
            format!("u-{revision}"),
            rng.pick(&TYPES),
        );
        events.push(event(
            &format!("{revision}-{tag}"),
            stream,
            Some(&subject),
            ty,
            8,
        ));
        added.push((revision, stream.to_owned(), Some(subject), ty.to_owned()));
    }
    (events, added)
}

/// The first condition that fails on the history, with its highest match.
fn expected(history: &History, conditions: &[AppendCondition]) -> Option<(usize, u64)> {
    let head = history.len() as u64;
    conditions.iter().enumerate().find_map(|(i, c)| {
        let h = model(history, &c.selector, head).unwrap_or(0);
        (!c.bound.holds(h)).then_some((i, h))
    })
}

#[derive(Default, Debug)]
struct Seen {
    committed: u32,
    refused: u32,
    by_kind: [u32; 3],
}

/// One conditional commit through `store`, checked against the model.
async fn attempt(
    store: &Store,
    name: &DatabaseName,
    rng: &mut Rng,
    history: &mut History,
    seen: &mut Seen,
    what: &str,
) {
    let conditions = conditions(rng, history.len() as u64);
    let (events, added) = if rng.next().is_multiple_of(6) {
        wide_events(rng, history, "w")
    } else {
        random_events(rng, history, "c")
    };
    let proto = conditions.iter().map(AppendCondition::to_proto).collect();
    let result = store.transact(&tx(name, events, proto, "")).await;
    match (expected(history, &conditions), result) {
        (None, Ok(summary)) => {
            assert_eq!(summary.basis, history.len() as u64, "{what}");
            history.extend(added);
            seen.committed += 1;
        }
        (Some((i, h)), Err(e)) => {
            assert_eq!(e.code(), ErrorCode::FailedPrecondition, "{what}: {e}");
            let message = e.to_string();
            let quoted = match h {
                0 => "no event matches".to_owned(),
                h => format!("highest matching revision is {h}"),
            };
            assert!(
                message.contains(&format!("conditions[{i}]")) && message.contains(&quoted),
                "{what}: expected conditions[{i}] with {h}: {message}\n{conditions:?}"
            );
            seen.refused += 1;
        }
        (expected, result) => {
            panic!("{what}: {conditions:?}\nexpected failure {expected:?}, got {result:?}")
        }
    }
}

#[tokio::test]
async fn every_verdict_equals_the_model_whoever_decides_and_however_far_the_index_lags() {
    let setup = store().await;
    let fresh = || Store::new(setup.client().clone(), setup.config().clone());
    let mut seen = Seen::default();
    for seed in 1..=4u64 {
        let mut rng = Rng::new(&format!("conditions {seed}"));
        let name = new_db();
        setup.create_database(&name).await.unwrap();
        let mut history = History::new();
        // Another writer's commits: no process below sees them coming.
        let other = fresh();
        commit_random(&other, &name, &mut rng, &mut history, 3).await;
        let warm = fresh();
        let mut since_index = fresh();
        for step in 0..60 {
            // Seed 3: the indexer never runs (the chunks answer everything).
            match rng.next() % 10 {
                0 if seed != 3 => {
                    setup
                        .index_database(name.as_str(), Duration::from_secs(30))
                        .await
                        .unwrap();
                    since_index = fresh();
                }
                1 => commit_random(&other, &name, &mut rng, &mut history, 1).await,
                _ => {
                    let kind = (rng.next() % 3) as usize;
                    let cold = fresh();
                    let store = [&warm, &since_index, &cold][kind];
                    let what = format!("seed {seed} step {step} store {kind}");
                    attempt(store, &name, &mut rng, &mut history, &mut seen, &what).await;
                    seen.by_kind[kind] += 1;
                }
            }
            // Seed 2: deleted and created again half way; the index and
            // every window of the old incarnation must not count.
            if seed == 2 && step == 30 {
                setup.delete_database(&name).await.unwrap();
                setup.create_database(&name).await.unwrap();
                history.clear();
                commit_random(&other, &name, &mut rng, &mut history, 1).await;
            }
        }
    }
    assert!(
        seen.committed >= 40 && seen.refused >= 40 && seen.by_kind.iter().all(|k| *k >= 25),
        "both verdicts, through every kind of process: {seen:?}"
    );
}

/// Every event's own conditions at the edges, decided by a process that
/// never saw the history: with subject `s{k}` last at revision k, `Max(k)`
/// and `Min(k)` hold and `Max(k - 1)` and `Min(k + 1)` fail quoting k —
/// through the index (revisions up to the watermark, the last one
/// included), through the chunks past it, and for a subject prefix both
/// through its postings and through the window's chunks.
#[tokio::test]
async fn the_index_decides_at_every_boundary() {
    for window_scan_events in [0, 20_000] {
        let setup = store_with(|c| c.window_scan_events = window_scan_events).await;
        let name = new_db();
        setup.create_database(&name).await.unwrap();
        let subject = |k: u64| format!("s{k:02}");
        let commit = |from: u64| {
            let events = (from..from + 5)
                .map(|k| event(&k.to_string(), "orders", Some(&subject(k)), "placed", 8))
                .collect();
            tx(&name, events, vec![], "")
        };
        for from in [1, 6, 11, 16] {
            setup.transact(&commit(from)).await.unwrap();
        }
        setup
            .index_database(name.as_str(), Duration::from_secs(30))
            .await
            .unwrap();
        // Not indexed: 21..=25.
        setup.transact(&commit(21)).await.unwrap();

        for k in 1..=25u64 {
            for selector in [
                Selector::SubjectEquals(subject(k)),
                Selector::And(vec![
                    Selector::SubjectStartsWith(subject(k)),
                    Selector::StreamEquals("orders".into()),
                ]),
            ] {
                let c = |bound| AppendCondition {
                    selector: selector.clone(),
                    bound,
                };
                for (conditions, failing, bound) in [
                    (vec![c(Bound::Max(k)), c(Bound::Max(k - 1))], 1, "Max"),
                    (vec![c(Bound::Min(k)), c(Bound::Min(k + 1))], 1, "Min"),
                    (
                        vec![c(Bound::Range { min: k, max: k }), c(Bound::Max(0))],
                        1,
                        "Max",
                    ),
                ] {
                    let cold = Store::new(setup.client().clone(), setup.config().clone());
                    let proto = conditions.iter().map(AppendCondition::to_proto).collect();
                    let t = tx(&name, vec![event("x", "other", None, "t", 8)], proto, "");
                    let message = cold.transact(&t).await.unwrap_err().to_string();
                    assert!(
                        message.contains(&format!("conditions[{failing}] {bound}"))
                            && message.contains(&format!("highest matching revision is {k}")),
                        "window scan {window_scan_events}, {selector:?} at {k}: {message}"
                    );
                }
            }
        }
    }
}
