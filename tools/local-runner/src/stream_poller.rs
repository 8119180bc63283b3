//! The DynamoDB stream event source: reads the table's stream, filters and
//! batches records as the template's event source mapping does, invokes the
//! function and applies its answer ([`Batcher`]), and keeps its
//! checkpoint ([`crate::checkpoint`]) so that a restart reads on.

use std::{future::Future, time::Duration};

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use evidentsource_dynamodb_stream::StreamReader;
use tokio::time::Instant;

use crate::{
    Shutdown,
    batcher::{BatchSettings, Batcher, Outcome, Step},
    checkpoint::{CheckpointFile, Positions, Progress, StartingPosition, shard_start},
    filter::Filters,
};

/// How often an idle source reads the stream again (Lambda polls each
/// shard about four times a second).
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// GetRecords' largest page.
pub const READ_LIMIT: i32 = 1000;

/// What the source did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StreamTotals {
    pub invocations: u64,
    pub delivered: u64,
    pub filtered_out: u64,
    pub retries: u64,
    pub bisections: u64,
    pub given_up: u64,
}

pub struct StreamSource {
    pub reader: StreamReader,
    pub settings: BatchSettings,
    pub window: Duration,
    pub filters: Filters,
    /// Where the checkpoint is kept; None: not kept.
    pub checkpoint: Option<StreamCheckpoint>,
}

/// A stream's checkpoint file, and where the stream stood when opened.
#[derive(Debug, Clone)]
pub struct StreamCheckpoint {
    pub file: CheckpointFile,
    pub stream_arn: String,
    pub positions: Positions,
}

/// Opens `stream_arn` where the event source left it, as recorded in
/// `file`; at `starting` when it never read this stream.
pub async fn open_stream(
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    region: &str,
    starting: StartingPosition,
    file: CheckpointFile,
) -> Result<(StreamReader, StreamCheckpoint), String> {
    let checkpoint = file.load(stream_arn)?;
    let reader = StreamReader::open_at(client, stream_arn, region, |shard| {
        shard_start(checkpoint.as_ref(), starting, shard)
    })
    .await
    .map_err(|e| match &checkpoint {
        Some(_) => format!("{e} (resuming from {})", file.path().display()),
        None => e.to_string(),
    })?;
    let checkpoint = StreamCheckpoint {
        file,
        stream_arn: stream_arn.to_owned(),
        positions: checkpoint.unwrap_or_default(),
    };
    Ok((reader, checkpoint))
}

impl StreamSource {
    /// Runs until `shutdown`; `invoke` is the function.
    pub async fn run<F, Fut>(mut self, mut invoke: F, mut shutdown: Shutdown) -> StreamTotals
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let mut totals = StreamTotals::default();
        let mut batcher: Batcher<EventRecord> = Batcher::new(self.settings);
        let mut progress = Progress::new(
            self.checkpoint
                .as_ref()
                .map(|c| c.positions.clone())
                .unwrap_or_default(),
        );
        let mut first_pending: Option<Instant> = None;
        let mut read_failures = 0u32;
        while !shutdown.is_set() {
            if batcher.room() > 0 {
                // A full GetRecords page, as Lambda reads: filtering may
                // drop most of it, and the batcher cuts batches.
                match self.reader.poll_by_shard(READ_LIMIT).await {
                    Ok(shards) => {
                        read_failures = 0;
                        for (shard, records) in shards {
                            for record in records {
                                let shape = serde_json::to_value(&record).unwrap_or_default();
                                let accepted = self.filters.accepts(&shape);
                                if let Some(n) = &record.change.sequence_number {
                                    progress.read(&shard, n, !accepted);
                                }
                                if accepted {
                                    batcher.push([record]);
                                    first_pending.get_or_insert_with(Instant::now);
                                } else {
                                    totals.filtered_out += 1;
                                }
                            }
                        }
                        self.save_checkpoint(&mut progress);
                    }
                    Err(e) => {
                        read_failures += 1;
                        tracing::warn!(error = %e, "reading the stream failed; trying again");
                        shutdown.sleep(backoff(read_failures)).await;
                        continue;
                    }
                }
            }
            let waiting = first_pending
                .is_some_and(|since| batcher.room() > 0 && since.elapsed() < self.window);
            if batcher.is_empty() || waiting {
                shutdown.sleep(POLL_INTERVAL).await;
                continue;
            }
            let mut event = Event::default();
            event.records = batcher.batch();
            let size = event.records.len();
            // The batch's records in order: a step's done records are its
            // first ones.
            let batch: Vec<String> = event
                .records
                .iter()
                .map(|r| r.change.sequence_number.clone().unwrap_or_default())
                .collect();
            totals.invocations += 1;
            let outcome = invoke(event).await;
            let step = batcher.complete(outcome);
            progress.done(
                batch[..done_in_batch(&step, &batch)]
                    .iter()
                    .map(String::as_str),
            );
            self.save_checkpoint(&mut progress);
            match step {
                Step::Done(n) => {
                    totals.delivered += n as u64;
                    tracing::debug!(records = n, "stream batch done");
                }
                Step::Retry { done, attempt } => {
                    totals.delivered += done as u64;
                    totals.retries += 1;
                    tracing::warn!(
                        batch = size,
                        done,
                        attempt,
                        "the function reported a failed record; retrying from it"
                    );
                    shutdown.sleep(backoff(attempt)).await;
                }
                Step::Bisected { size } => {
                    totals.bisections += 1;
                    tracing::warn!(size, "the function failed; retrying with half the batch");
                }
                Step::GaveUp { records, .. } => {
                    totals.given_up += records.len() as u64;
                    tracing::error!(
                        records = records.len(),
                        first = records
                            .first()
                            .and_then(|r| r.change.sequence_number.as_deref())
                            .unwrap_or("?"),
                        last = records
                            .last()
                            .and_then(|r| r.change.sequence_number.as_deref())
                            .unwrap_or("?"),
                        "retries exhausted: records sent to the on-failure destination"
                    );
                }
            }
            if batcher.is_empty() {
                first_pending = None;
            }
        }
        totals
    }

    /// Writes the checkpoint when it moved. A failed write is logged and
    /// tried again at the next move: it costs a re-delivery after a
    /// restart, not a record.
    fn save_checkpoint(&self, progress: &mut Progress) {
        let Some(checkpoint) = &self.checkpoint else {
            return;
        };
        if progress.take_changed()
            && let Err(e) = checkpoint
                .file
                .save(&checkpoint.stream_arn, progress.positions())
        {
            tracing::warn!(error = %e, "the stream checkpoint was not written");
        }
    }
}

/// How many of the batch's first records a step is done with: delivered,
/// or given up (those follow the ones done before the last failure).
pub fn done_in_batch(step: &Step<EventRecord>, batch: &[String]) -> usize {
    match step {
        Step::Done(n) => *n,
        Step::Retry { done, .. } => *done,
        Step::Bisected { .. } => 0,
        Step::GaveUp { records, .. } => records
            .last()
            .and_then(|last| {
                batch
                    .iter()
                    .position(|n| Some(n) == last.change.sequence_number.as_ref())
            })
            .map_or(0, |at| at + 1),
    }
    .min(batch.len())
}

/// 100 ms doubling per attempt, at most 5 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: &str) -> EventRecord {
        let mut r = EventRecord::default();
        r.change.sequence_number = Some(n.to_owned());
        r
    }

    #[test]
    fn each_step_is_done_with_the_batchs_first_records() {
        let batch: Vec<String> = ["1", "2", "3", "4"].map(String::from).to_vec();
        let table = [
            (Step::Done(4), 4),
            (
                Step::Retry {
                    done: 2,
                    attempt: 1,
                },
                2,
            ),
            (
                Step::Retry {
                    done: 0,
                    attempt: 3,
                },
                0,
            ),
            (Step::Bisected { size: 2 }, 0),
            // Given up after 1 and 2 were done: all four are.
            (
                Step::GaveUp {
                    records: vec![record("3"), record("4")],
                    attempts: 1,
                },
                4,
            ),
            // Given up with a bisected batch of two: those two.
            (
                Step::GaveUp {
                    records: vec![record("1"), record("2")],
                    attempts: 1,
                },
                2,
            ),
            (
                Step::GaveUp {
                    records: vec![record("99")],
                    attempts: 1,
                },
                0,
            ),
        ];
        for (step, done) in table {
            assert_eq!(done_in_batch(&step, &batch), done, "{step:?}");
        }
    }
}
