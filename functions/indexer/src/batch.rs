//! What a batch of stream records asks the indexer to do: which databases
//! to index, in the order they first appear, and for each the highest
//! revision its records name and the record Lambda must retry from if the
//! database is not indexed that far. Pure: no I/O.

use aws_lambda_events::event::dynamodb::EventRecord;
use evidentsource_table_schema::stream;

/// One database's records in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseWork {
    pub name: String,
    /// The highest revision its active head records name.
    pub highest: u64,
    /// The incarnation of the record with the highest revision.
    pub incarnation: String,
    /// Its first record's position in the batch: reported when the
    /// database is not indexed up to `highest`, so Lambda retries from
    /// there and nothing of it after that point is skipped.
    pub first: usize,
}

/// What one record is to the indexer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// An active head at `revision`.
    Head {
        name: String,
        incarnation: String,
        revision: u64,
    },
    /// Nothing to index: another item, a tombstone, an expiry. The event
    /// source filter keeps these out; this is the second line.
    Skip(&'static str),
    /// A head record whose image does not read as a head item. Skipped,
    /// never retried: retrying cannot change the image, and skipping loses
    /// nothing, because the indexer always indexes up to the head it reads
    /// from the table, not up to what a record says; the database's next
    /// record (or any run of the writer) indexes whatever this one would have.
    Malformed(String),
}

pub fn read(record: &EventRecord) -> Read {
    if !stream::is_head_record(&record.change.keys) {
        return Read::Skip("not a head item");
    }
    if !stream::HEAD_CHANGE_EVENT_NAMES.contains(&record.event_name.as_str()) {
        return Read::Skip("not a head item's change (a tombstone expired)");
    }
    match stream::head_of_image(&record.change.new_image) {
        Ok(head) if head.is_active() => Read::Head {
            name: head.name,
            incarnation: head.incarnation,
            revision: head.revision,
        },
        Ok(_) => Read::Skip("a deleted database"),
        Err(e) => Read::Malformed(e.to_string()),
    }
}

/// The batch's databases in first-appearance order, and the records
/// skipped as malformed (position, reason).
pub fn plan(records: &[EventRecord]) -> (Vec<DatabaseWork>, Vec<(usize, String)>) {
    plan_reads(records.iter().map(read))
}

pub fn plan_reads(reads: impl Iterator<Item = Read>) -> (Vec<DatabaseWork>, Vec<(usize, String)>) {
    let mut work: Vec<DatabaseWork> = Vec::new();
    let mut malformed = Vec::new();
    for (index, read) in reads.enumerate() {
        match read {
            Read::Head {
                name,
                incarnation,
                revision,
            } => match work.iter_mut().find(|w| w.name == name) {
                Some(w) => {
                    if revision >= w.highest {
                        w.highest = revision;
                        w.incarnation = incarnation;
                    }
                }
                None => work.push(DatabaseWork {
                    name,
                    highest: revision,
                    incarnation,
                    first: index,
                }),
            },
            Read::Skip(_) => {}
            Read::Malformed(reason) => malformed.push((index, reason)),
        }
    }
    (work, malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(name: &str, incarnation: &str, revision: u64) -> Read {
        Read::Head {
            name: name.into(),
            incarnation: incarnation.into(),
            revision,
        }
    }

    fn work(name: &str, highest: u64, incarnation: &str, first: usize) -> DatabaseWork {
        DatabaseWork {
            name: name.into(),
            highest,
            incarnation: incarnation.into(),
            first,
        }
    }

    #[test]
    fn databases_in_first_appearance_order_with_their_highest_revision() {
        let table: Vec<(Vec<Read>, Vec<DatabaseWork>, Vec<usize>)> = vec![
            (vec![], vec![], vec![]),
            (
                vec![head("b", "1", 1), head("a", "1", 4), head("b", "1", 3)],
                vec![work("b", 3, "1", 0), work("a", 4, "1", 1)],
                vec![],
            ),
            // Skipped and malformed records take positions but no work.
            (
                vec![
                    Read::Skip("x"),
                    Read::Malformed("bad".into()),
                    head("a", "1", 2),
                    head("a", "1", 1),
                ],
                vec![work("a", 2, "1", 2)],
                vec![1],
            ),
            // Deleted and created again within the batch: the new
            // incarnation's records come later and name the highest
            // revision they reach.
            (
                vec![
                    head("a", "old", 7),
                    head("a", "new", 0),
                    head("a", "new", 1),
                ],
                vec![work("a", 7, "old", 0)],
                vec![],
            ),
        ];
        for (reads, expected, malformed) in table {
            let (got, bad) = plan_reads(reads.clone().into_iter());
            assert_eq!(got, expected, "{reads:?}");
            let bad: Vec<usize> = bad.iter().map(|(i, _)| *i).collect();
            assert_eq!(bad, malformed, "{reads:?}");
        }
    }
}
