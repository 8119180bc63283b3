//! A per-process cache of each database's condition index: for every
//! distinct (stream, subject, type) seen, the highest revision it reached.
//! That table decides every append condition exactly (see the domain crate's
//! property test), and it only grows by appending: a warm function reads just
//! the chunks committed since it last looked, not the whole history.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use evidentsource_domain::OwnedFacts;

/// Databases kept; beyond this an arbitrary entry is dropped (it is rebuilt
/// from the table when needed).
const MAX_DATABASES: usize = 256;
/// Distinct triples kept per database; beyond this the entry is dropped
/// after use and every evaluation reads the chunks it needs.
pub(crate) const MAX_TRIPLES: usize = 200_000;

#[derive(Debug, Default)]
pub(crate) struct DatabaseFacts {
    /// Every chunk with revisions ≤ this has been folded in.
    pub scanned_to: u64,
    pub highest: HashMap<OwnedFacts, u64>,
}

impl DatabaseFacts {
    pub fn add(&mut self, facts: OwnedFacts, revision: u64) {
        let entry = self.highest.entry(facts).or_insert(revision);
        if *entry < revision {
            *entry = revision;
        }
    }
}

type Key = (String, String);

#[derive(Debug, Default)]
pub(crate) struct FactsCache {
    entries: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<DatabaseFacts>>>>,
}

impl FactsCache {
    /// The entry of one incarnation of a database (created empty).
    pub fn entry(&self, name: &str, incarnation: &str) -> Arc<tokio::sync::Mutex<DatabaseFacts>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let key = (name.to_owned(), incarnation.to_owned());
        if !entries.contains_key(&key)
            && entries.len() >= MAX_DATABASES
            && let Some(victim) = entries.keys().next().cloned()
        {
            entries.remove(&victim);
        }
        entries.entry(key).or_default().clone()
    }

    pub fn forget(&self, name: &str, incarnation: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&(name.to_owned(), incarnation.to_owned()));
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

    /// Each distinct (stream, subject, type) keeps the highest revision it
    /// reached, whatever order the revisions are folded in.
    #[test]
    fn the_index_keeps_each_triples_highest_revision() {
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
            let mut index = DatabaseFacts::default();
            for (f, revision) in &folded {
                index.add(f.clone(), *revision);
            }
            let expected: HashMap<OwnedFacts, u64> = expected.into_iter().collect();
            assert_eq!(index.highest, expected, "{folded:?}");
        }
    }

    /// One entry per (database, incarnation): shared while kept, fresh after
    /// `forget`, and never more than MAX_DATABASES of them.
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
        // Asking again for a kept entry, at the bound, evicts nothing and
        // returns it as it was.
        let keys = |cache: &FactsCache| {
            let mut keys: Vec<Key> = cache.entries.lock().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        };
        let before = keys(&cache);
        for (name, incarnation) in before.clone() {
            let kept = cache.entries.lock().unwrap()[&(name.clone(), incarnation.clone())].clone();
            let entry = cache.entry(&name, &incarnation);
            assert!(Arc::ptr_eq(&entry, &kept), "{name}");
            assert_eq!(keys(&cache), before, "{name}");
        }
    }
}
