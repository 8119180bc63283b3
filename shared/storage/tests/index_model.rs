//! The index read against a brute-force model, in moto: random histories
//! (several commits, streams, subjects with long ones among them, types),
//! indexed up to a point with the rest left as the indexer's lag, and
//! random selectors: the highest matching revision from the index and the
//! tail equals the one found by checking every event. Also across delete
//! and re-create.

mod common;

use std::time::Duration;

use common::*;
use evidentsource_domain::{EventFacts, Selector};
use evidentsource_storage::Store;

/// A small deterministic generator (tests stay reproducible by seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const STREAMS: [&str; 3] = ["orders", "ordersx", "payments"];
const TYPES: [&str; 3] = ["com.a.placed", "com.a.paid", "org.b.noted"];

fn subjects() -> Vec<String> {
    let mut v: Vec<String> = ["o-1", "o-2", "o-12", "p-1", "\u{1}x"]
        .map(String::from)
        .to_vec();
    // Long: cut in the index's facts (256) and keys (400).
    v.push(format!("{}-a", "L".repeat(300)));
    v.push(format!("{}-b", "L".repeat(300)));
    v.push(format!("{}-c", "M".repeat(500)));
    v
}

fn leaf(rng: &mut Rng, subjects: &[String]) -> Selector {
    let subject = subjects[(rng.next() % subjects.len() as u64) as usize].clone();
    match rng.next() % 6 {
        0 => Selector::StreamEquals(rng.pick(&STREAMS).into()),
        1 => Selector::StreamStartsWith(rng.pick(&["order", "pay", "x"]).into()),
        2 => Selector::SubjectEquals(subject),
        3 => {
            let cut = (rng.next() as usize % (subject.len() + 1)).min(subject.len());
            let cut = (0..=cut)
                .rev()
                .find(|c| subject.is_char_boundary(*c))
                .unwrap_or(0);
            Selector::SubjectStartsWith(subject[..cut].to_owned())
        }
        4 => Selector::EventTypeEquals(rng.pick(&TYPES).into()),
        _ => Selector::EventTypeStartsWith(rng.pick(&["com.a.", "org", "com.a.p", "zz"]).into()),
    }
}

fn selector(rng: &mut Rng, subjects: &[String], depth: u32) -> Selector {
    if depth == 0 || !rng.next().is_multiple_of(3) {
        return leaf(rng, subjects);
    }
    let parts = (0..1 + rng.next() % 3)
        .map(|_| selector(rng, subjects, depth - 1))
        .collect();
    if rng.next().is_multiple_of(2) {
        Selector::And(parts)
    } else {
        Selector::Or(parts)
    }
}

/// (revision, stream, subject, type) of every event committed.
type History = Vec<(u64, String, Option<String>, String)>;

async fn commit_random(
    store: &Store,
    name: &evidentsource_domain::DatabaseName,
    rng: &mut Rng,
    history: &mut History,
    commits: u32,
) {
    let subjects = subjects();
    for c in 0..commits {
        let n = 1 + rng.next() % 12;
        let mut events = Vec::new();
        for i in 0..n {
            let stream = rng.pick(&STREAMS).to_owned();
            let subject = (!rng.next().is_multiple_of(5))
                .then(|| subjects[(rng.next() % subjects.len() as u64) as usize].clone());
            let ty = rng.pick(&TYPES).to_owned();
            events.push(event(
                &format!("{}-{c}-{i}", history.len()),
                &stream,
                subject.as_deref(),
                &ty,
                8,
            ));
            history.push((history.len() as u64 + 1, stream, subject, ty));
        }
        store.transact(&tx(name, events, vec![], "")).await.unwrap();
    }
}

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

/// Each long subject whole and as prefixes, also read through the stream
/// postings (the cheaper part of the `and`), whose entries keep the
/// subject cut: the index keeps 256 bytes, so `L…L-a` and `L…L-b` agree
/// there and differ after, and only the event decides.
fn long_value_selectors(subjects: &[String]) -> Vec<Selector> {
    let through_streams =
        |s: Selector| Selector::And(vec![Selector::StreamStartsWith(String::new()), s]);
    subjects
        .iter()
        .filter(|v| v.len() > 256)
        .flat_map(|v| {
            [
                Selector::SubjectEquals(v.clone()),
                Selector::SubjectStartsWith(v.clone()),
                Selector::SubjectStartsWith(v[..v.len() - 1].to_owned()),
                through_streams(Selector::SubjectStartsWith(v.clone())),
                through_streams(Selector::SubjectEquals(v.clone())),
            ]
        })
        .collect()
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
        let mut rng = Rng(seed);
        let mut random = |n: usize, depth: u32| -> Vec<Selector> {
            (0..n)
                .map(|_| selector(&mut rng, &subjects, depth))
                .collect()
        };
        let (first, second, later) = (random(40, 3), random(40, 3), random(10, 2));
        let mut rng = Rng(seed + 100);
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
