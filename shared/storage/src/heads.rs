//! A per-process memory of each database's last known head, so that a warm
//! function commits without reading the head first (docs/storage.md,
//! "Round trips").
//!
//! A remembered head is only a guess at the basis; nothing trusts it:
//! - the commit's head update is conditioned on the basis and the
//!   incarnation, so a commit on a stale head is cancelled, and the
//!   cancellation returns the stored head to go again from;
//! - conditions evaluated on it may pass only because the commit then
//!   proves the basis; a condition that fails on it is evaluated again on a
//!   head read now, so a refusal is always decided on the current head;
//! - a transaction id is checked by its record's put condition.
//!
//! A wrong guess costs one cancelled write; a right one saves the head read.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::head::HeadItem;

/// Databases remembered; beyond this an arbitrary one is forgotten.
const MAX_DATABASES: usize = 1024;

/// A conditional commit goes from a remembered head only while the index's
/// watermark remembered with it lags it by at most this many events: the
/// evaluation reads the chunks past the watermark its window does not hold,
/// and a watermark read long ago would make that a long read. Past it, the
/// head and a fresh watermark are read (one round trip every this many
/// events this process commits, at worst).
pub(crate) const WATERMARK_LAG: u64 = 1_000;

/// After a cancelled commit on a database (a lost race, or a remembered
/// head another process had moved), this process's next this many commits
/// on it read the head first. A process that just committed holds the
/// current head and would otherwise send its next commit at once, ahead of
/// the writers it beat, who learn the head from their cancelled attempt and
/// back off: with a process per writer (Lambda instances serving one
/// request at a time) the same winners kept winning and 2 of 960 commits
/// gave up after 200 lost races (`make bench`, "Contention"). Reading
/// first gives the losers the round trip's head start they had before heads
/// were remembered; where another process writes, the guess would fail
/// anyway.
pub(crate) const CONTENDED_COMMITS: u32 = 16;

/// A head as this process last saw it, with the highest index watermark it
/// read for that incarnation (0: none read).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KnownHead {
    pub head: HeadItem,
    pub watermark: u64,
    /// Commits that will read the head first ([`CONTENDED_COMMITS`]).
    pub reads_left: u32,
}

impl KnownHead {
    /// Whether a commit may go from this head without reading it: not
    /// while the database is contended; then always without conditions,
    /// and with conditions while the watermark is recent.
    pub fn serves(&self, conditional: bool) -> bool {
        self.reads_left == 0
            && (!conditional || self.head.revision.saturating_sub(self.watermark) <= WATERMARK_LAG)
    }

    /// Whether this is a later head of the same database than `head`.
    fn newer_than(&self, head: &HeadItem) -> bool {
        self.head.incarnation == head.incarnation && self.head.revision > head.revision
    }

    /// What is known after seeing `head` (and, read with it, `watermark`):
    /// within an incarnation revisions and watermarks only grow, so the
    /// newer of each is kept; another incarnation replaces what was known
    /// (usually a re-created database; if it is the older one, the next
    /// commit's condition says so and costs a retry, nothing more).
    fn merged(old: Option<&KnownHead>, head: &HeadItem, watermark: Option<u64>) -> KnownHead {
        match old {
            Some(old) if old.head.incarnation == head.incarnation => KnownHead {
                head: if head.revision >= old.head.revision {
                    head.clone()
                } else {
                    old.head.clone()
                },
                watermark: old.watermark.max(watermark.unwrap_or(0)),
                reads_left: old.reads_left,
            },
            _ => KnownHead {
                head: head.clone(),
                watermark: watermark.unwrap_or(0),
                reads_left: 0,
            },
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct KnownHeads {
    entries: Mutex<HashMap<String, KnownHead>>,
    /// The last commit round trip measured, in µs: a commit that goes from
    /// a remembered head has measured nothing yet, and the deadline check
    /// before its write needs an estimate.
    round_trip_micros: AtomicU64,
}

impl KnownHeads {
    pub fn round_trip(&self) -> Duration {
        Duration::from_micros(self.round_trip_micros.load(Ordering::Relaxed))
    }

    pub fn note_round_trip(&self, round_trip: Duration) {
        let micros = u64::try_from(round_trip.as_micros()).unwrap_or(u64::MAX);
        self.round_trip_micros.store(micros, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub fn get(&self, name: &str) -> Option<KnownHead> {
        self.lock().get(name).cloned()
    }

    /// The head a commit may go from without reading it, if any; a commit
    /// that must read it first (the database contended) counts down.
    pub fn guess(&self, name: &str, conditional: bool) -> Option<KnownHead> {
        let mut entries = self.lock();
        let known = entries.get_mut(name)?;
        if known.reads_left > 0 {
            known.reads_left -= 1;
            return None;
        }
        known.serves(conditional).then(|| known.clone())
    }

    /// The head remembered for the database, whether or not a commit may
    /// go from it: it names the incarnation whose chunks to read ahead.
    pub fn peek(&self, name: &str) -> Option<HeadItem> {
        self.lock().get(name).map(|known| known.head.clone())
    }

    /// A commit on the database was cancelled: the next
    /// [`CONTENDED_COMMITS`] read the head first.
    pub fn contended(&self, name: &str) {
        if let Some(known) = self.lock().get_mut(name) {
            known.reads_left = CONTENDED_COMMITS;
        }
    }

    /// Remembers a head this process read, committed or was returned by a
    /// cancelled commit; `watermark` when the index's was read with it.
    /// A deleted database is forgotten.
    pub fn remember(&self, head: &HeadItem, watermark: Option<u64>) {
        let mut entries = self.lock();
        if !head.is_active() {
            entries.remove(&head.name);
            return;
        }
        let known = KnownHead::merged(entries.get(&head.name), head, watermark);
        if entries.len() >= MAX_DATABASES
            && !entries.contains_key(&head.name)
            && let Some(victim) = entries.keys().next().cloned()
        {
            entries.remove(&victim);
        }
        entries.insert(head.name.clone(), known);
    }

    /// `head`, or the head remembered for its database if that is newer
    /// (same incarnation, higher revision): a writer that lost a race
    /// holds the head it lost to, while others of this process may have
    /// committed on top of it since; going from that would lose again, to
    /// writers that go from memory.
    pub fn freshest(&self, head: HeadItem) -> HeadItem {
        match self.lock().get(&head.name) {
            Some(known) if known.newer_than(&head) => known.head.clone(),
            _ => head,
        }
    }

    pub fn forget(&self, name: &str) {
        self.lock().remove(name);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, KnownHead>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::HeadState;

    fn head(incarnation: &str, revision: u64) -> HeadItem {
        let mut h = HeadItem::new("orders", incarnation.into(), 1_000);
        h.revision = revision;
        h
    }

    fn known(incarnation: &str, revision: u64, watermark: u64) -> KnownHead {
        KnownHead {
            head: head(incarnation, revision),
            watermark,
            reads_left: 0,
        }
    }

    /// Revisions and watermarks only grow within an incarnation; another
    /// incarnation starts over.
    #[test]
    fn what_is_kept_of_a_head_seen() {
        for (old, seen, watermark, expected) in [
            (None, head("a", 5), None, known("a", 5, 0)),
            (None, head("a", 5), Some(3), known("a", 5, 3)),
            (Some(known("a", 5, 3)), head("a", 9), None, known("a", 9, 3)),
            (
                Some(known("a", 5, 3)),
                head("a", 9),
                Some(8),
                known("a", 9, 8),
            ),
            // An older read arriving late does not move it back.
            (
                Some(known("a", 9, 8)),
                head("a", 5),
                Some(3),
                known("a", 9, 8),
            ),
            (
                Some(known("a", 9, 8)),
                head("a", 9),
                Some(9),
                known("a", 9, 9),
            ),
            // Another incarnation: nothing of the old one holds.
            (Some(known("a", 9, 8)), head("b", 0), None, known("b", 0, 0)),
            (
                Some(known("a", 9, 8)),
                head("b", 2),
                Some(1),
                known("b", 2, 1),
            ),
        ] {
            assert_eq!(
                KnownHead::merged(old.as_ref(), &seen, watermark),
                expected,
                "{old:?} then {} at {} with {watermark:?}",
                seen.incarnation,
                seen.revision
            );
        }
    }

    /// Unconditioned commits always go from memory; conditional ones while
    /// the watermark lags by at most WATERMARK_LAG.
    #[test]
    fn which_commits_a_known_head_serves() {
        for (revision, watermark, conditional, serves) in [
            (0, 0, true, true),
            (10, 0, true, true),
            (WATERMARK_LAG, 0, true, true),
            (WATERMARK_LAG + 1, 0, true, false),
            (WATERMARK_LAG + 1, 0, false, true),
            (50_000, 49_500, true, true),
            (50_000, 48_999, true, false),
            (50_000, 0, false, true),
        ] {
            assert_eq!(
                known("a", revision, watermark).serves(conditional),
                serves,
                "revision {revision}, watermark {watermark}, conditional {conditional}"
            );
        }
    }

    /// After a cancelled commit, the next CONTENDED_COMMITS commits read the
    /// head first; the count survives what is learnt of the same
    /// incarnation, not a new one.
    #[test]
    fn a_contended_database_is_read_first() {
        let heads = KnownHeads::default();
        heads.contended("orders");
        assert_eq!(heads.guess("orders", false), None, "nothing known");
        heads.remember(&head("a", 3), Some(3));
        assert!(heads.guess("orders", true).is_some());
        heads.contended("orders");
        heads.remember(&head("a", 5), Some(5));
        for i in 0..CONTENDED_COMMITS {
            assert_eq!(heads.guess("orders", false), None, "commit {i}");
        }
        assert_eq!(
            heads.guess("orders", false).map(|k| k.head.revision),
            Some(5)
        );
        heads.contended("orders");
        heads.remember(&head("b", 0), Some(0));
        assert!(heads.guess("orders", false).is_some(), "a new incarnation");
        let mut contended = known("a", 10, 10);
        contended.reads_left = 1;
        assert!(!contended.serves(false));
    }

    /// A lost race's head gives way to a newer one of the same incarnation.
    #[test]
    fn the_freshest_head_of_an_incarnation() {
        let heads = KnownHeads::default();
        assert_eq!(heads.freshest(head("a", 4)), head("a", 4), "nothing known");
        heads.remember(&head("a", 7), None);
        for (held, freshest) in [
            (head("a", 4), head("a", 7)),
            (head("a", 7), head("a", 7)),
            (head("a", 9), head("a", 9)),
            (head("b", 2), head("b", 2)),
        ] {
            assert_eq!(
                heads.freshest(held.clone()),
                freshest,
                "{} at {}",
                held.incarnation,
                held.revision
            );
        }
    }

    /// A deleted database is forgotten; the number remembered is bounded.
    #[test]
    fn remembering_forgetting_and_the_bound() {
        let heads = KnownHeads::default();
        heads.remember(&head("a", 3), Some(2));
        assert_eq!(heads.get("orders"), Some(known("a", 3, 2)));
        let mut tombstone = head("a", 3);
        tombstone.state = HeadState::Deleted;
        heads.remember(&tombstone, None);
        assert_eq!(heads.get("orders"), None);
        heads.remember(&head("b", 0), Some(0));
        heads.forget("orders");
        assert_eq!(heads.get("orders"), None);

        for i in 0..MAX_DATABASES + 10 {
            let mut h = head("a", 1);
            h.name = format!("db{i}");
            heads.remember(&h, None);
            assert!(heads.lock().len() <= MAX_DATABASES, "{i}");
            assert!(heads.get(&h.name).is_some(), "{i}");
        }
    }
}
