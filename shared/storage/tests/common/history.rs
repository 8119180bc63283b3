//! Random histories and selectors for the index's model tests
//! (`index_model`, `index_query`): several commits over streams, subjects
//! (long ones, prefixes of each other, some events without) and types.

use evidentsource_domain::{DatabaseName, Selector};
use evidentsource_storage::Store;

use super::{event, tx};

/// A small deterministic generator (tests stay reproducible by seed).
pub struct Seq(pub u64);

impl Seq {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

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

pub fn leaf(rng: &mut Seq, subjects: &[String]) -> Selector {
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

pub fn selector(rng: &mut Seq, subjects: &[String], depth: u32) -> Selector {
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

pub async fn commit_random(
    store: &Store,
    name: &DatabaseName,
    rng: &mut Seq,
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
