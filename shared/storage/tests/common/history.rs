//! Random histories over small alphabets (streams, types and subjects
//! that are prefixes of one another, long subjects the index cuts, events
//! without a subject), random selectors over them, and the brute-force
//! model every index test compares with.

use evidentsource_domain::{EventFacts, Selector};
use evidentsource_storage::Store;

use super::{Rng, event, tx};

pub const STREAMS: [&str; 3] = ["orders", "ordersx", "payments"];
pub const TYPES: [&str; 3] = ["com.a.placed", "com.a.paid", "org.b.noted"];

pub fn subjects() -> Vec<String> {
    let mut v: Vec<String> = ["o-1", "o-2", "o-12", "p-1", "\u{1}x"]
        .map(String::from)
        .to_vec();
    // Long: cut in the index's facts (256) and keys (400).
    v.push(format!("{}-a", "L".repeat(300)));
    v.push(format!("{}-b", "L".repeat(300)));
    v.push(format!("{}-c", "M".repeat(500)));
    v
}

pub fn leaf(rng: &mut Rng, subjects: &[String]) -> Selector {
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

pub fn selector(rng: &mut Rng, subjects: &[String], depth: u32) -> Selector {
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
pub type History = Vec<(u64, String, Option<String>, String)>;

/// Up to 12 random events to follow `history`, and what the history holds
/// once they commit.
pub fn random_events(
    rng: &mut Rng,
    history: &History,
    tag: &str,
) -> (Vec<evidentsource_proto::cloudevents::CloudEvent>, History) {
    let subjects = subjects();
    let n = 1 + rng.next() % 12;
    let (mut events, mut added) = (Vec::new(), History::new());
    for i in 0..n {
        let stream = rng.pick(&STREAMS).to_owned();
        let subject = (!rng.next().is_multiple_of(5))
            .then(|| subjects[(rng.next() % subjects.len() as u64) as usize].clone());
        let ty = rng.pick(&TYPES).to_owned();
        let revision = history.len() as u64 + 1 + i;
        events.push(event(
            &format!("{revision}-{tag}"),
            &stream,
            subject.as_deref(),
            &ty,
            8,
        ));
        added.push((revision, stream, subject, ty));
    }
    (events, added)
}

pub async fn commit_random(
    store: &Store,
    name: &evidentsource_domain::DatabaseName,
    rng: &mut Rng,
    history: &mut History,
    commits: u32,
) {
    for c in 0..commits {
        let (events, added) = random_events(rng, history, &c.to_string());
        store.transact(&tx(name, events, vec![], "")).await.unwrap();
        history.extend(added);
    }
}

/// The revisions in `revisions` of the events `selector` matches, in order.
pub fn matching(
    history: &History,
    selector: &Selector,
    revisions: std::ops::RangeInclusive<u64>,
) -> Vec<u64> {
    history
        .iter()
        .filter(|(r, ..)| revisions.contains(r))
        .filter(|(_, stream, subject, ty)| {
            selector.matches(&EventFacts {
                stream,
                subject: subject.as_deref(),
                event_type: ty,
            })
        })
        .map(|(r, ..)| *r)
        .collect()
}

/// The highest revision at or below `basis` that `selector` matches.
pub fn model(history: &History, selector: &Selector, basis: u64) -> Option<u64> {
    matching(history, selector, 1..=basis).last().copied()
}

/// Each long subject whole and as prefixes, also read through the stream
/// postings (the cheaper part of the `and`), whose entries keep the
/// subject cut: the index keeps 256 bytes, so `L…L-a` and `L…L-b` agree
/// there and differ after, and only the event decides.
pub fn long_value_selectors(subjects: &[String]) -> Vec<Selector> {
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
