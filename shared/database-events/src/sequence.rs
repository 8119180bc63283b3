//! The per-database sequence a consumer of the Database Events topic can
//! rely on (docs/contract.md §2), as a check: Created first, each
//! Transacted's `ce_basis` equal to the previous `ce_revision`, Deleted
//! last; a duplicate carries the same `ce_id` and the same bytes.

use std::collections::HashMap;

use crate::{ReceivedBody, ReceivedDatabaseEvent};

/// Per-database state a consumer keeps to notice gaps and duplicates.
#[derive(Debug, Default)]
pub struct SequenceTracker {
    /// The revision of the last event per database; `None` once deleted.
    last: HashMap<String, Option<u64>>,
    /// ce_id → (key, value) of the first copy, to tell duplicates.
    seen: HashMap<String, (Vec<u8>, Vec<u8>)>,
}

impl SequenceTracker {
    /// Checks one received event; returns the problems found (empty if
    /// the event continues its database's sequence).
    pub fn observe(
        &mut self,
        event: &ReceivedDatabaseEvent,
        key: &[u8],
        value: &[u8],
    ) -> Vec<String> {
        if let Some((k, v)) = self.seen.get(&event.id) {
            return if k == key && v == value {
                vec![format!(
                    "DUPLICATE of {} (byte-identical, skip it)",
                    event.id
                )]
            } else {
                vec![format!("DUPLICATE ID {} WITH DIFFERENT CONTENT", event.id)]
            };
        }
        self.seen
            .insert(event.id.clone(), (key.to_vec(), value.to_vec()));
        let last = self.last.get(&event.database).copied().flatten();
        let mut problems = Vec::new();
        match &event.body {
            ReceivedBody::Created(_) => {
                if let Some(r) = last {
                    problems.push(format!(
                        "CREATED while the database is at revision {r} (missed Deleted?)"
                    ));
                }
                self.last.insert(event.database.clone(), Some(0));
            }
            ReceivedBody::Transacted(b) => {
                match last {
                    None => problems.push(format!(
                        "GAP: Transacted at basis {} without Created",
                        b.basis
                    )),
                    Some(r) if r != b.basis => {
                        problems.push(format!("GAP: expected basis {r}, got {}", b.basis))
                    }
                    Some(_) => {}
                }
                self.last.insert(event.database.clone(), Some(b.revision));
            }
            ReceivedBody::Deleted => {
                if last.is_none() {
                    problems.push("DELETED without Created".to_string());
                }
                self.last.insert(event.database.clone(), None);
            }
        }
        problems
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
                .map(|(e, value)| tracker.observe(e, e.database.as_bytes(), value.as_bytes()))
                .collect();
            assert_eq!(found, expected, "{events:?}");
        }
    }
}
