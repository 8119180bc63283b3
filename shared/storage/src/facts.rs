//! A per-process accelerator for append conditions: for a window of each
//! database's recent revisions, every distinct (stream, subject, type)
//! seen there with the highest revision it reached. Evaluated with
//! `domain::evaluate`, that table gives each condition's highest match in
//! the window exactly (the domain crate's property test).
//!
//! It only saves reads; nothing depends on it (`crate::conditions`):
//! - the window is `(base, scanned_to]`; a warm function reads just the
//!   chunks committed since `scanned_to`, and folds its own commits in;
//! - above the index's watermark it spares reading the indexer's lag
//!   again; `base` 0 (the window is the whole history) spares the index
//!   reads too, while the history has few distinct triples;
//! - memory is bounded whatever the history, by the bytes the triples
//!   take (subjects and types may be long): at most
//!   [`BYTES_PER_DATABASE`] per database and about [`BYTES_IN_ALL`] in the
//!   process; a window that would grow past that is emptied.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use evidentsource_domain::{AppendCondition, ConditionCheck, OwnedFacts, evaluate};

/// Databases kept; beyond this an arbitrary entry is dropped.
const MAX_DATABASES: usize = 256;
/// Bytes of triples kept per database (some 30,000 short ones).
pub(crate) const BYTES_PER_DATABASE: usize = 4 << 20;
/// Bytes of triples kept in the process, over every database; past it,
/// other databases' entries go.
pub(crate) const BYTES_IN_ALL: usize = 24 << 20;
/// What a kept triple costs beside its strings (their headers, the map's
/// entry, the revision).
const TRIPLE_OVERHEAD: usize = 128;

/// The memory one kept triple takes, about.
fn weight(facts: &OwnedFacts) -> usize {
    facts.stream.len()
        + facts.subject.as_ref().map_or(0, String::len)
        + facts.event_type.len()
        + TRIPLE_OVERHEAD
}
/// A whole-history window that fell this far behind is not brought up to
/// date: the index answers instead.
pub(crate) const CATCH_UP_EVENTS: u64 = 5_000;

/// One incarnation's window.
#[derive(Debug)]
pub(crate) struct DatabaseFacts {
    /// The window's start (exclusive): 0 when it is the whole history.
    pub base: u64,
    /// Every revision in `(base, scanned_to]` has been folded in.
    pub scanned_to: u64,
    /// The highest watermark this process has read for the incarnation
    /// (the index is complete up to it).
    pub watermark: u64,
    highest: HashMap<OwnedFacts, u64>,
    /// What `highest` takes ([`weight`]).
    bytes: usize,
    /// The process's bytes of triples, shared by every entry.
    total: Arc<AtomicUsize>,
}

impl DatabaseFacts {
    fn new(total: Arc<AtomicUsize>) -> Self {
        DatabaseFacts {
            base: 0,
            scanned_to: 0,
            watermark: 0,
            highest: HashMap::new(),
            bytes: 0,
            total,
        }
    }

    /// Whether the window is the whole history.
    pub fn is_complete(&self) -> bool {
        self.base == 0
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.highest.len()
    }

    /// The bytes the window's triples take.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Folds in one event; `false` (and nothing folded) when the window is
    /// full.
    pub fn add(&mut self, facts: OwnedFacts, revision: u64) -> bool {
        if let Some(highest) = self.highest.get_mut(&facts) {
            *highest = (*highest).max(revision);
            return true;
        }
        let weight = weight(&facts);
        if self.bytes + weight > BYTES_PER_DATABASE {
            return false;
        }
        self.highest.insert(facts, revision);
        self.bytes += weight;
        self.total.fetch_add(weight, Ordering::Relaxed);
        true
    }

    /// An empty window starting at `at`.
    pub fn reset(&mut self, at: u64) {
        self.total.fetch_sub(self.bytes, Ordering::Relaxed);
        self.highest.clear();
        self.bytes = 0;
        self.base = at;
        self.scanned_to = at;
    }

    /// Moves the window's start up to `revision` (the index answers below
    /// it): a triple whose highest revision is at or below it has no event
    /// left in the window.
    pub fn start_at(&mut self, revision: u64) {
        if revision <= self.base {
            return;
        }
        let mut removed = 0;
        self.highest.retain(|f, r| {
            let keep = *r > revision;
            if !keep {
                removed += weight(f);
            }
            keep
        });
        self.bytes -= removed;
        self.total.fetch_sub(removed, Ordering::Relaxed);
        self.base = revision.min(self.scanned_to);
    }

    /// Each condition's highest match in the window (0: none).
    pub fn check(&self, conditions: &[AppendCondition]) -> ConditionCheck {
        evaluate(
            conditions,
            self.highest.iter().map(|(f, r)| (*r, f.as_facts())),
        )
    }
}

impl Drop for DatabaseFacts {
    fn drop(&mut self) {
        self.total.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

type Key = (String, String);

#[derive(Debug, Default)]
pub(crate) struct FactsCache {
    entries: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<DatabaseFacts>>>>,
    total: Arc<AtomicUsize>,
}

impl FactsCache {
    /// The entry of one incarnation of a database (created empty), making
    /// room first: past [`MAX_DATABASES`] entries or [`BYTES_IN_ALL`]
    /// bytes of triples, others are dropped (an entry in use is freed when its
    /// user is done).
    pub fn entry(&self, name: &str, incarnation: &str) -> Arc<tokio::sync::Mutex<DatabaseFacts>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let key = (name.to_owned(), incarnation.to_owned());
        let others: Vec<Key> = entries.keys().filter(|k| **k != key).cloned().collect();
        for victim in others {
            let full = entries.len() >= MAX_DATABASES && !entries.contains_key(&key);
            if !full && self.bytes() <= BYTES_IN_ALL {
                break;
            }
            entries.remove(&victim);
        }
        entries
            .entry(key)
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(DatabaseFacts::new(
                    self.total.clone(),
                )))
            })
            .clone()
    }

    /// The entry of one incarnation, if this process has one (none is
    /// created).
    pub fn existing(
        &self,
        name: &str,
        incarnation: &str,
    ) -> Option<Arc<tokio::sync::Mutex<DatabaseFacts>>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&(name.to_owned(), incarnation.to_owned()))
            .cloned()
    }

    pub fn forget(&self, name: &str, incarnation: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&(name.to_owned(), incarnation.to_owned()));
    }

    /// Bytes of triples held in the process.
    pub fn bytes(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn facts(stream: &str, subject: Option<&str>, event_type: &str) -> OwnedFacts {
        OwnedFacts {
            stream: stream.into(),
            subject: subject.map(str::to_owned),
            event_type: event_type.into(),
        }
    }

    fn window() -> DatabaseFacts {
        DatabaseFacts::new(Arc::default())
    }

    /// Each distinct (stream, subject, type) keeps the highest revision it
    /// reached, whatever order the revisions are folded in.
    #[test]
    fn the_window_keeps_each_triples_highest_revision() {
        let a = facts("orders", Some("o-1"), "placed");
        let a_other_subject = facts("orders", Some("o-2"), "placed");
        let a_no_subject = facts("orders", None, "placed");
        let b = facts("orders", Some("o-1"), "shipped");
        for (folded, expected) in [
            (vec![(a.clone(), 3)], vec![(a.clone(), 3)]),
            (vec![(a.clone(), 3), (a.clone(), 7)], vec![(a.clone(), 7)]),
            (vec![(a.clone(), 7), (a.clone(), 3)], vec![(a.clone(), 7)]),
            (
                vec![(a.clone(), 1), (b.clone(), 2), (a.clone(), 4)],
                vec![(a.clone(), 4), (b.clone(), 2)],
            ),
            (
                vec![
                    (a.clone(), 5),
                    (a_other_subject.clone(), 6),
                    (a_no_subject.clone(), 2),
                ],
                vec![(a.clone(), 5), (a_other_subject, 6), (a_no_subject, 2)],
            ),
            (vec![], vec![]),
        ] {
            let mut index = window();
            for (f, revision) in &folded {
                assert!(index.add(f.clone(), *revision));
            }
            let expected: HashMap<OwnedFacts, u64> = expected.into_iter().collect();
            assert_eq!(index.highest, expected, "{folded:?}");
            let bytes: usize = expected.keys().map(weight).sum();
            assert_eq!(index.bytes(), bytes, "{folded:?}");
            assert_eq!(index.total.load(Ordering::Relaxed), bytes, "{folded:?}");
        }
    }

    /// Moving the start drops exactly the triples with nothing left in the
    /// window; a full window refuses new triples but still raises known
    /// ones; the process count follows every change, and a dropped window
    /// gives its triples back.
    #[test]
    fn starting_later_resetting_and_the_bound() {
        let total = Arc::new(AtomicUsize::new(0));
        let mut w = DatabaseFacts::new(total.clone());
        let (a, b, c) = (
            facts("s", Some("a"), "t"),
            facts("s", Some("b"), "t"),
            facts("s", Some("c"), "t"),
        );
        for (f, r) in [(a.clone(), 2), (b.clone(), 5), (c.clone(), 9)] {
            w.add(f, r);
        }
        w.scanned_to = 9;
        let each = weight(&a);
        for (start, kept, base) in [(1, 3, 1), (5, 1, 5), (3, 1, 5), (12, 0, 9)] {
            w.start_at(start);
            assert_eq!((w.len(), w.base), (kept, base), "start at {start}");
            assert_eq!(w.bytes(), kept * each, "start at {start}");
            assert_eq!(
                total.load(Ordering::Relaxed),
                kept * each,
                "start at {start}"
            );
        }
        w.add(a.clone(), 10);
        w.reset(20);
        assert_eq!((w.len(), w.base, w.scanned_to), (0, 20, 20));
        assert_eq!(total.load(Ordering::Relaxed), 0);

        let mut i = 0;
        while w.add(facts("s", Some(&format!("{i:08}")), "t"), 21) {
            i += 1;
        }
        assert!(w.bytes() <= BYTES_PER_DATABASE && w.bytes() + each + 8 > BYTES_PER_DATABASE);
        assert!(!w.add(facts("s", Some("one more"), "t"), 22));
        assert!(
            w.add(facts("s", Some("00000007"), "t"), 23),
            "a known triple"
        );
        assert_eq!(w.highest[&facts("s", Some("00000007"), "t")], 23);
        assert_eq!(total.load(Ordering::Relaxed), w.bytes());
        // Long values weigh what they hold: far fewer fit.
        let mut long = DatabaseFacts::new(Arc::default());
        let mut n = 0;
        while long.add(
            facts("s", Some(&format!("{n}{}", "x".repeat(100_000))), "t"),
            1,
        ) {
            n += 1;
        }
        assert!((35..=45).contains(&n), "{n} subjects of 100 KB");
        drop(w);
        assert_eq!(total.load(Ordering::Relaxed), 0);
    }

    /// One entry per (database, incarnation): shared while kept, fresh after
    /// `forget`, never more than MAX_DATABASES of them, and other entries
    /// dropped while the process holds more than BYTES_IN_ALL of triples.
    #[test]
    fn entries_by_database_and_incarnation() {
        let cache = FactsCache::default();
        let first = cache.entry("orders", "00aa");
        first.try_lock().unwrap().scanned_to = 5;
        for (name, incarnation, same_as_first) in [
            ("orders", "00aa", true),
            ("orders", "00bb", false),
            ("accounts", "00aa", false),
            ("orders#00", "aa", false),
        ] {
            let entry = cache.entry(name, incarnation);
            assert_eq!(
                Arc::ptr_eq(&entry, &first),
                same_as_first,
                "{name} {incarnation}"
            );
        }
        cache.forget("orders", "00aa");
        let again = cache.entry("orders", "00aa");
        assert!(!Arc::ptr_eq(&again, &first));
        assert_eq!(again.try_lock().unwrap().scanned_to, 0);

        let cache = FactsCache::default();
        for i in 0..MAX_DATABASES + 10 {
            let name = format!("db{i}");
            let entry = cache.entry(&name, "00aa");
            entry.try_lock().unwrap().scanned_to = i as u64 + 1;
            let entries = cache.entries.lock().unwrap();
            assert!(entries.len() <= MAX_DATABASES, "{i}: {}", entries.len());
            assert!(entries.contains_key(&(name, "00aa".to_owned())), "{i}");
        }

        // Seven full databases: past BYTES_IN_ALL, asking for an entry
        // drops others until the process is under it.
        let cache = FactsCache::default();
        for d in 0..7 {
            let entry = cache.entry(&format!("db{d}"), "00aa");
            let mut w = entry.try_lock().unwrap();
            let mut i = 0;
            while w.add(facts("s", Some(&i.to_string()), "t"), 1) {
                i += 1;
            }
        }
        assert!(cache.bytes() > BYTES_IN_ALL);
        let kept = cache.entry("db6", "00aa");
        assert!(cache.bytes() <= BYTES_IN_ALL, "{}", cache.bytes());
        assert!(cache.entries.lock().unwrap().len() >= 2);
        assert!(kept.try_lock().unwrap().bytes() + 200 > BYTES_PER_DATABASE);
    }
}
