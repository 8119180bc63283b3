//! Lambda's delivery rules for a stream-like event source (the DynamoDB
//! stream and, in provisioned mode, Kafka), as a state machine over the
//! records read: batches of at most `batch_size`; `ReportBatchItemFailures`
//! (records before the earliest reported failure are done, the batch is
//! retried from it); `BisectBatchOnFunctionError` (a failed invocation is
//! retried with half the batch, which does not count as a retry);
//! `MaximumRetryAttempts` (then the batch goes to the on-failure
//! destination and the source moves on).

use std::collections::VecDeque;

use aws_lambda_events::event::{
    dynamodb::EventRecord, kafka::KafkaRecord, streams::DynamoDbEventResponse,
};

/// The event source mapping's settings (the template's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    pub batch_size: usize,
    /// `MaximumRetryAttempts`; [`INFINITE_RETRIES`] for -1.
    pub max_retries: u32,
    pub bisect_on_error: bool,
}

/// `MaximumRetryAttempts: -1` (and a Kafka source on demand): retried
/// until it succeeds.
pub const INFINITE_RETRIES: u32 = u32::MAX;

/// A record as a partial batch response names it.
pub trait BatchRecord: Clone {
    /// The `itemIdentifier` that names this record, if it can be named.
    fn item_identifier(&self) -> Option<&str>;
}

impl BatchRecord for EventRecord {
    fn item_identifier(&self) -> Option<&str> {
        self.change.sequence_number.as_deref()
    }
}

impl BatchRecord for KafkaRecord {
    /// The runner's Kafka source takes no partial batch responses (the
    /// template does not turn them on): any reported failure fails the
    /// batch, as an identifier Lambda cannot match does.
    fn item_identifier(&self) -> Option<&str> {
        None
    }
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The function returned this response.
    Returned(DynamoDbEventResponse),
    /// The function failed (error, timeout, crash).
    Failed,
}

impl Outcome {
    /// A response that reports no failure.
    pub fn success() -> Self {
        Outcome::Returned(DynamoDbEventResponse::default())
    }
}

/// What the source does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step<R> {
    /// This many records are done; carry on.
    Done(usize),
    /// This many records are done and the rest of the batch is retried
    /// (`attempt` retries so far).
    Retry { done: usize, attempt: u32 },
    /// The batch was halved after a failed invocation.
    Bisected { size: usize },
    /// Retries are exhausted: these records go to the on-failure
    /// destination; `attempts` is how many times they were tried.
    GaveUp { records: Vec<R>, attempts: u32 },
}

#[derive(Debug)]
pub struct Batcher<R> {
    settings: BatchSettings,
    pending: VecDeque<R>,
    attempts: u32,
    /// Invocations of the current records, retries and bisections alike.
    invocations: u32,
    /// The current batch size (smaller after bisecting).
    limit: usize,
}

impl<R: BatchRecord> Batcher<R> {
    pub fn new(settings: BatchSettings) -> Self {
        Batcher {
            settings,
            pending: VecDeque::new(),
            attempts: 0,
            invocations: 0,
            limit: settings.batch_size.max(1),
        }
    }

    /// How many more records to read before a full batch.
    pub fn room(&self) -> usize {
        self.settings.batch_size.saturating_sub(self.pending.len())
    }

    pub fn push(&mut self, records: impl IntoIterator<Item = R>) {
        self.pending.extend(records);
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The records read and not yet done with, in order.
    pub fn pending(&self) -> impl Iterator<Item = &R> {
        self.pending.iter()
    }

    /// Takes out the pending records `expired` says are too old
    /// (`MaximumRecordAgeInSeconds`): they go to the on-failure destination
    /// without an invocation.
    pub fn take_expired(&mut self, expired: impl Fn(&R) -> bool) -> Vec<R> {
        let (old, keep): (Vec<R>, Vec<R>) = self.pending.drain(..).partition(|r| expired(r));
        self.pending.extend(keep);
        if !old.is_empty() {
            self.reset();
        }
        old
    }

    /// The next invocation's records.
    pub fn batch(&self) -> Vec<R> {
        self.pending.iter().take(self.limit).cloned().collect()
    }

    /// Applies the outcome of invoking the function with [`Self::batch`].
    pub fn complete(&mut self, outcome: Outcome) -> Step<R> {
        let n = self.limit.min(self.pending.len());
        self.invocations += 1;
        match outcome {
            Outcome::Returned(response) if response.batch_item_failures.is_empty() => {
                self.pending.drain(..n);
                self.reset();
                Step::Done(n)
            }
            Outcome::Returned(response) => {
                // The earliest failure; an identifier that names no record
                // of the batch fails the whole batch, as in Lambda.
                let failed = response
                    .batch_item_failures
                    .iter()
                    .map(|f| {
                        self.pending
                            .iter()
                            .take(n)
                            .position(|r| {
                                r.item_identifier().is_some()
                                    && r.item_identifier() == f.item_identifier.as_deref()
                            })
                            .unwrap_or(0)
                    })
                    .min()
                    .unwrap_or(0);
                self.pending.drain(..failed);
                self.retry_or_give_up(failed, n - failed)
            }
            Outcome::Failed if self.settings.bisect_on_error && n > 1 => {
                self.limit = n / 2;
                Step::Bisected { size: self.limit }
            }
            Outcome::Failed => self.retry_or_give_up(0, n),
        }
    }

    fn retry_or_give_up(&mut self, done: usize, rest: usize) -> Step<R> {
        self.attempts = self.attempts.saturating_add(1);
        if self.attempts > self.settings.max_retries {
            let records = self.pending.drain(..rest).collect();
            let attempts = self.invocations;
            self.reset();
            Step::GaveUp { records, attempts }
        } else {
            Step::Retry {
                done,
                attempt: self.attempts,
            }
        }
    }

    fn reset(&mut self) {
        self.attempts = 0;
        self.invocations = 0;
        self.limit = self.settings.batch_size.max(1);
    }
}

#[cfg(test)]
mod tests {
    use aws_lambda_events::event::streams::DynamoDbBatchItemFailure;

    use super::*;

    fn record(seq: u32) -> EventRecord {
        let mut r = EventRecord::default();
        r.change.sequence_number = Some(format!("{seq:021}"));
        r
    }

    fn seqs(batch: &[EventRecord]) -> Vec<u32> {
        batch
            .iter()
            .map(|r| {
                r.change
                    .sequence_number
                    .as_deref()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect()
    }

    fn failing_at(seqs: &[u32]) -> Outcome {
        let mut response = DynamoDbEventResponse::default();
        for s in seqs {
            let mut f = DynamoDbBatchItemFailure::default();
            f.item_identifier = Some(format!("{s:021}"));
            response.batch_item_failures.push(f);
        }
        Outcome::Returned(response)
    }

    fn batcher(batch_size: usize, max_retries: u32, bisect_on_error: bool) -> Batcher<EventRecord> {
        let mut b = Batcher::new(BatchSettings {
            batch_size,
            max_retries,
            bisect_on_error,
        });
        b.push((1..=10).map(record));
        b
    }

    #[test]
    fn batches_are_at_most_the_batch_size_and_advance_on_success() {
        let mut b = batcher(4, 3, true);
        assert_eq!(b.room(), 0);
        assert_eq!(seqs(&b.batch()), [1, 2, 3, 4]);
        assert_eq!(b.complete(failing_at(&[])), Step::Done(4));
        assert_eq!(seqs(&b.batch()), [5, 6, 7, 8]);
        assert_eq!(b.complete(failing_at(&[])), Step::Done(4));
        assert_eq!(seqs(&b.batch()), [9, 10]);
        assert_eq!(b.room(), 2);
        assert_eq!(b.complete(failing_at(&[])), Step::Done(2));
        assert!(b.is_empty());
    }

    #[test]
    fn a_reported_failure_retries_from_the_earliest_failed_record() {
        let mut b = batcher(5, 3, true);
        // Failures reported out of order: the earliest wins.
        assert_eq!(
            b.complete(failing_at(&[4, 3])),
            Step::Retry {
                done: 2,
                attempt: 1
            }
        );
        assert_eq!(seqs(&b.batch()), [3, 4, 5, 6, 7]);
        assert_eq!(b.complete(failing_at(&[])), Step::Done(5));
        assert_eq!(seqs(&b.batch()), [8, 9, 10]);
    }

    #[test]
    fn an_unknown_identifier_fails_the_whole_batch() {
        let mut b = batcher(3, 3, true);
        assert_eq!(
            b.complete(failing_at(&[99])),
            Step::Retry {
                done: 0,
                attempt: 1
            }
        );
        assert_eq!(seqs(&b.batch()), [1, 2, 3]);
    }

    #[test]
    fn exhausted_retries_hand_the_rest_of_the_batch_to_the_destination() {
        let mut b = batcher(3, 2, true);
        for attempt in 1..=2 {
            assert_eq!(
                b.complete(failing_at(&[2])),
                Step::Retry {
                    done: usize::from(attempt == 1),
                    attempt
                }
            );
        }
        // The retried batch (2, 3 and 4, refilled to the batch size as
        // Lambda does) failed at 2 three times: 1 call + 2 retries.
        let Step::GaveUp { records, .. } = b.complete(failing_at(&[2])) else {
            panic!("expected to give up")
        };
        assert_eq!(records.len(), 3);
        assert_eq!(seqs(&b.batch()), [5, 6, 7], "moves on");
        assert_eq!(
            b.complete(failing_at(&[6])),
            Step::Retry {
                done: 1,
                attempt: 1
            },
            "the count restarts"
        );
    }

    #[test]
    fn a_failed_invocation_bisects_without_spending_retries() {
        let mut b = batcher(8, 1, true);
        assert_eq!(b.complete(Outcome::Failed), Step::Bisected { size: 4 });
        assert_eq!(seqs(&b.batch()), [1, 2, 3, 4]);
        assert_eq!(b.complete(Outcome::Failed), Step::Bisected { size: 2 });
        assert_eq!(b.complete(Outcome::Failed), Step::Bisected { size: 1 });
        assert_eq!(seqs(&b.batch()), [1]);
        assert_eq!(
            b.complete(Outcome::Failed),
            Step::Retry {
                done: 0,
                attempt: 1
            }
        );
        let Step::GaveUp { records, .. } = b.complete(Outcome::Failed) else {
            panic!("expected to give up")
        };
        assert_eq!(records.len(), 1);
        // After giving up, full batches again.
        assert_eq!(seqs(&b.batch()), [2, 3, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn without_bisecting_a_failed_invocation_is_a_retry() {
        let mut b = batcher(4, 1, false);
        assert_eq!(
            b.complete(Outcome::Failed),
            Step::Retry {
                done: 0,
                attempt: 1
            }
        );
        assert_eq!(seqs(&b.batch()), [1, 2, 3, 4]);
    }

    #[test]
    fn giving_up_counts_every_invocation_of_the_records() {
        // 8 records, bisected to 1 (3 invocations), then 1 call and 2
        // retries of the first record alone: 6 invocations.
        let mut b = batcher(8, 2, true);
        for _ in 0..3 {
            assert!(matches!(b.complete(Outcome::Failed), Step::Bisected { .. }));
        }
        for attempt in 1..=2 {
            assert_eq!(
                b.complete(Outcome::Failed),
                Step::Retry { done: 0, attempt }
            );
        }
        assert_eq!(
            b.complete(Outcome::Failed),
            Step::GaveUp {
                records: vec![record(1)],
                attempts: 6
            }
        );
    }

    #[test]
    fn infinite_retries_never_give_up() {
        let mut b = batcher(2, INFINITE_RETRIES, false);
        for attempt in 1..=10_000 {
            assert_eq!(
                b.complete(Outcome::Failed),
                Step::Retry { done: 0, attempt }
            );
        }
        assert_eq!(b.complete(Outcome::success()), Step::Done(2));
    }

    #[test]
    fn expired_records_leave_without_an_invocation() {
        let mut b = batcher(4, 3, true);
        assert_eq!(b.complete(Outcome::Failed), Step::Bisected { size: 2 });
        let old = b.take_expired(|r| seqs(std::slice::from_ref(r))[0].is_multiple_of(3));
        assert_eq!(seqs(&old), [3, 6, 9]);
        // The rest in order, at the full batch size again.
        assert_eq!(seqs(&b.batch()), [1, 2, 4, 5]);
        assert!(b.take_expired(|_| false).is_empty());
    }
}
