//! The per-database sequence a consumer of the Database Events topic can
//! rely on (docs/contract.md §2), as a check: Created first, each
//! Transacted's `ce_basis` equal to the previous `ce_revision`, Deleted
//! last; a duplicate carries the same `ce_id` and the same bytes.

use std::{
    collections::{HashMap, VecDeque, hash_map::DefaultHasher},
    fmt,
    hash::{Hash, Hasher},
};

use crate::{ReceivedBody, ReceivedDatabaseEvent};

/// How many `ce_id`s a tracker remembers to tell duplicates. A duplicate
/// is a re-send of a recent message (the publisher retrying a batch it
/// could not confirm), so a window bounds memory on a topic that never
/// ends without missing one.
pub const DEFAULT_DUPLICATE_WINDOW: usize = 100_000;

/// Something a consumer should know about an event it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceProblem {
    /// A byte-identical copy of an event already read: skip it.
    Duplicate {
        id: String,
    },
    /// Another event under an id already read: a contract violation.
    DuplicateIdWithDifferentContent {
        id: String,
    },
    /// Created while the database was live at this revision (a Deleted
    /// was missed).
    CreatedWhileLive {
        revision: u64,
    },
    /// A Transacted before any Created of its database.
    TransactedWithoutCreated {
        basis: u64,
    },
    /// A Transacted whose basis is not the previous revision: the events
    /// in between were not read.
    Gap {
        expected_basis: u64,
        basis: u64,
    },
    DeletedWithoutCreated,
}

impl SequenceProblem {
    /// A copy to skip rather than a fault.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, SequenceProblem::Duplicate { .. })
    }
}

impl fmt::Display for SequenceProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SequenceProblem::Duplicate { id } => {
                write!(f, "DUPLICATE of {id} (byte-identical, skip it)")
            }
            SequenceProblem::DuplicateIdWithDifferentContent { id } => {
                write!(f, "DUPLICATE ID {id} WITH DIFFERENT CONTENT")
            }
            SequenceProblem::CreatedWhileLive { revision } => write!(
                f,
                "CREATED while the database is at revision {revision} (missed Deleted?)"
            ),
            SequenceProblem::TransactedWithoutCreated { basis } => {
                write!(f, "GAP: Transacted at basis {basis} without Created")
            }
            SequenceProblem::Gap {
                expected_basis,
                basis,
            } => write!(f, "GAP: expected basis {expected_basis}, got {basis}"),
            SequenceProblem::DeletedWithoutCreated => f.write_str("DELETED without Created"),
        }
    }
}

/// Per-database state a consumer keeps to notice gaps and duplicates.
#[derive(Debug)]
pub struct SequenceTracker {
    /// The revision of the last event per database; `None` once deleted.
    last: HashMap<String, Option<u64>>,
    /// ce_id → a hash of the first copy's key and value, to tell
    /// duplicates; `order` evicts the oldest beyond `window`.
    seen: HashMap<String, u64>,
    order: VecDeque<String>,
    window: usize,
    /// Whether a database's first event may be other than Created (a
    /// consumer that did not start at the topic's beginning).
    resuming: bool,
}

impl Default for SequenceTracker {
    fn default() -> Self {
        SequenceTracker {
            last: HashMap::new(),
            seen: HashMap::new(),
            order: VecDeque::new(),
            window: DEFAULT_DUPLICATE_WINDOW,
            resuming: false,
        }
    }
}

impl SequenceTracker {
    /// A tracker for a consumer that reads from the middle of the topic
    /// (a committed offset, the latest): a database's first event read
    /// starts its sequence, whatever it is. [`SequenceTracker::resume_at`]
    /// still pins a database the consumer knows.
    pub fn resuming() -> Self {
        SequenceTracker {
            resuming: true,
            ..Self::default()
        }
    }

    /// Remembers at most `window` ids for duplicate detection.
    pub fn with_duplicate_window(mut self, window: usize) -> Self {
        self.window = window.max(1);
        self
    }

    /// The consumer's state of `database` is at `revision` (e.g. a
    /// projection stored with it): the next Transacted must have it as
    /// its basis.
    pub fn resume_at(&mut self, database: &str, revision: u64) {
        self.last.insert(database.to_owned(), Some(revision));
    }

    /// The revision read last of `database`; `None` if unknown or deleted.
    pub fn revision_of(&self, database: &str) -> Option<u64> {
        self.last.get(database).copied().flatten()
    }

    /// Checks one received event; returns the problems found (empty if
    /// the event continues its database's sequence).
    pub fn observe(
        &mut self,
        event: &ReceivedDatabaseEvent,
        key: &[u8],
        value: &[u8],
    ) -> Vec<SequenceProblem> {
        let fingerprint = {
            let mut h = DefaultHasher::new();
            (key, value).hash(&mut h);
            h.finish()
        };
        if let Some(first) = self.seen.get(&event.id) {
            let id = event.id.clone();
            return vec![if *first == fingerprint {
                SequenceProblem::Duplicate { id }
            } else {
                SequenceProblem::DuplicateIdWithDifferentContent { id }
            }];
        }
        self.remember(&event.id, fingerprint);
        let known = self.last.get(&event.database).copied();
        // An unknown database of a resuming consumer: this event starts it.
        let trusted = self.resuming && known.is_none();
        let last = known.flatten();
        let mut problems = Vec::new();
        match &event.body {
            ReceivedBody::Created(_) => {
                if let Some(revision) = last {
                    problems.push(SequenceProblem::CreatedWhileLive { revision });
                }
                self.last.insert(event.database.clone(), Some(0));
            }
            ReceivedBody::Transacted(b) => {
                match last {
                    _ if trusted => {}
                    None => {
                        problems.push(SequenceProblem::TransactedWithoutCreated { basis: b.basis })
                    }
                    Some(r) if r != b.basis => problems.push(SequenceProblem::Gap {
                        expected_basis: r,
                        basis: b.basis,
                    }),
                    Some(_) => {}
                }
                self.last.insert(event.database.clone(), Some(b.revision));
            }
            ReceivedBody::Deleted => {
                if last.is_none() && !trusted {
                    problems.push(SequenceProblem::DeletedWithoutCreated);
                }
                self.last.insert(event.database.clone(), None);
            }
        }
        problems
    }

    fn remember(&mut self, id: &str, fingerprint: u64) {
        self.seen.insert(id.to_owned(), fingerprint);
        self.order.push_back(id.to_owned());
        while self.order.len() > self.window {
            if let Some(oldest) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use evidentsource_proto::{BatchSummary, Database};

    use super::*;

    fn event(id: &str, database: &str, body: ReceivedBody) -> ReceivedDatabaseEvent {
        ReceivedDatabaseEvent {
            id: id.to_owned(),
            database: database.to_owned(),
            time: None,
            revision: None,
            basis: None,
            body,
        }
    }

    fn created(id: &str, db: &str) -> ReceivedDatabaseEvent {
        event(id, db, ReceivedBody::Created(Database::default()))
    }

    fn transacted(id: &str, db: &str, basis: u64, revision: u64) -> ReceivedDatabaseEvent {
        event(
            id,
            db,
            ReceivedBody::Transacted(BatchSummary {
                basis,
                revision,
                ..Default::default()
            }),
        )
    }

    fn deleted(id: &str, db: &str) -> ReceivedDatabaseEvent {
        event(id, db, ReceivedBody::Deleted)
    }

    #[test]
    fn problems_name_what_broke_the_sequence() {
        // (events in order with their value bytes, problems per event)
        type Case = (
            Vec<(ReceivedDatabaseEvent, &'static str)>,
            Vec<Vec<&'static str>>,
        );
        let table: Vec<Case> = vec![
            (
                vec![
                    (created("1", "a"), "c"),
                    (transacted("2", "a", 0, 3), "t"),
                    (transacted("3", "a", 3, 5), "t2"),
                    (deleted("4", "a"), "d"),
                    (created("5", "a"), "c2"),
                ],
                vec![vec![], vec![], vec![], vec![], vec![]],
            ),
            (
                vec![(transacted("1", "a", 0, 1), "t")],
                vec![vec!["GAP: Transacted at basis 0 without Created"]],
            ),
            (
                vec![(created("1", "a"), "c"), (transacted("2", "a", 2, 4), "t")],
                vec![vec![], vec!["GAP: expected basis 0, got 2"]],
            ),
            (
                vec![(created("1", "a"), "c"), (created("2", "a"), "c")],
                vec![
                    vec![],
                    vec!["CREATED while the database is at revision 0 (missed Deleted?)"],
                ],
            ),
            (
                vec![(deleted("1", "a"), "d")],
                vec![vec!["DELETED without Created"]],
            ),
            (
                vec![(created("1", "a"), "c"), (created("1", "a"), "c")],
                vec![vec![], vec!["DUPLICATE of 1 (byte-identical, skip it)"]],
            ),
            (
                vec![(created("1", "a"), "c"), (created("1", "a"), "other")],
                vec![vec![], vec!["DUPLICATE ID 1 WITH DIFFERENT CONTENT"]],
            ),
            // Databases are tracked apart.
            (
                vec![(created("1", "a"), "c"), (transacted("2", "b", 0, 1), "t")],
                vec![vec![], vec!["GAP: Transacted at basis 0 without Created"]],
            ),
        ];
        for (events, expected) in table {
            let mut tracker = SequenceTracker::default();
            let found: Vec<Vec<String>> = events
                .iter()
                .map(|(e, value)| {
                    tracker
                        .observe(e, e.database.as_bytes(), value.as_bytes())
                        .iter()
                        .map(ToString::to_string)
                        .collect()
                })
                .collect();
            assert_eq!(found, expected, "{events:?}");
        }
    }

    #[test]
    fn a_resuming_tracker_starts_each_database_at_its_first_event() {
        // (tracker, events, problems per event)
        let pinned = || {
            let mut t = SequenceTracker::resuming();
            t.resume_at("a", 7);
            t
        };
        type Case = (
            fn() -> SequenceTracker,
            Vec<ReceivedDatabaseEvent>,
            Vec<Vec<SequenceProblem>>,
        );
        let table: Vec<Case> = vec![
            // Mid-stream: a Transacted or Deleted first is fine, then the
            // chain is checked as usual.
            (
                SequenceTracker::resuming,
                vec![
                    transacted("1", "a", 4, 6),
                    transacted("2", "a", 6, 9),
                    transacted("3", "a", 10, 11),
                ],
                vec![
                    vec![],
                    vec![],
                    vec![SequenceProblem::Gap {
                        expected_basis: 9,
                        basis: 10,
                    }],
                ],
            ),
            (
                SequenceTracker::resuming,
                vec![deleted("1", "a"), transacted("2", "a", 0, 1)],
                vec![
                    vec![],
                    vec![SequenceProblem::TransactedWithoutCreated { basis: 0 }],
                ],
            ),
            // A database the consumer pinned is checked from its first event.
            (
                pinned,
                vec![transacted("1", "a", 6, 8), transacted("2", "b", 6, 8)],
                vec![
                    vec![SequenceProblem::Gap {
                        expected_basis: 7,
                        basis: 6,
                    }],
                    vec![],
                ],
            ),
            // From the beginning, the same first event is a gap.
            (
                SequenceTracker::default,
                vec![transacted("1", "a", 4, 6)],
                vec![vec![SequenceProblem::TransactedWithoutCreated { basis: 4 }]],
            ),
        ];
        for (make, events, expected) in table {
            let mut tracker = make();
            let found: Vec<Vec<SequenceProblem>> = events
                .iter()
                .map(|e| tracker.observe(e, b"k", e.id.as_bytes()))
                .collect();
            assert_eq!(found, expected, "{events:?}");
        }
    }

    #[test]
    fn duplicates_are_told_within_the_window_only() {
        let mut tracker = SequenceTracker::default().with_duplicate_window(2);
        let events = [
            created("1", "a"),
            transacted("2", "a", 0, 1),
            transacted("3", "a", 1, 2),
        ];
        for e in &events {
            assert!(tracker.observe(e, b"k", b"v").is_empty());
        }
        // "1" fell out of the window; "3" is still in it.
        let again = tracker.observe(&events[2], b"k", b"v");
        assert_eq!(again, vec![SequenceProblem::Duplicate { id: "3".into() }]);
        assert!(again[0].is_duplicate());
        let changed = tracker.observe(&events[1], b"k", b"other");
        assert_eq!(
            changed,
            vec![SequenceProblem::DuplicateIdWithDifferentContent { id: "2".into() }]
        );
        assert!(!changed[0].is_duplicate());
        assert_eq!(
            tracker.observe(&events[0], b"k", b"v"),
            vec![SequenceProblem::CreatedWhileLive { revision: 2 }]
        );
        assert_eq!(tracker.revision_of("a"), Some(0));
    }
}
