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
