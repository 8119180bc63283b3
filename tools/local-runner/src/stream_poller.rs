//! The DynamoDB stream event source: reads the table's stream, filters and
//! batches records as the template's event source mapping does, invokes the
//! function and applies its answer ([`StreamBatcher`]).

use std::{future::Future, time::Duration};

use aws_lambda_events::event::dynamodb::Event;
use evidentsource_dynamodb_stream::StreamReader;
use tokio::time::Instant;

use crate::{
    Shutdown,
    filter::Filters,
    stream_source::{Outcome, Step, StreamBatcher, StreamSettings},
};

/// How often an idle source reads the stream again (Lambda polls each
/// shard about four times a second).
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// GetRecords' largest page.
const READ_LIMIT: i32 = 1000;

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
    pub settings: StreamSettings,
    pub window: Duration,
    pub filters: Filters,
}

impl StreamSource {
    /// Runs until `shutdown`; `invoke` is the function.
    pub async fn run<F, Fut>(mut self, mut invoke: F, mut shutdown: Shutdown) -> StreamTotals
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let mut totals = StreamTotals::default();
        let mut batcher = StreamBatcher::new(self.settings);
        let mut first_pending: Option<Instant> = None;
        let mut read_failures = 0u32;
        while !shutdown.is_set() {
            if batcher.room() > 0 {
                // A full GetRecords page, as Lambda reads: filtering may
                // drop most of it, and the batcher cuts batches.
                match self.reader.poll(READ_LIMIT).await {
                    Ok(records) => {
                        read_failures = 0;
                        for record in records {
                            let shape = serde_json::to_value(&record).unwrap_or_default();
                            if self.filters.accepts(&shape) {
                                batcher.push([record]);
                                first_pending.get_or_insert_with(Instant::now);
                            } else {
                                totals.filtered_out += 1;
                            }
                        }
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
            let event = batcher.batch();
            let size = event.records.len();
            totals.invocations += 1;
            let outcome = invoke(event).await;
            match batcher.complete(outcome) {
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
                Step::GaveUp(records) => {
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
}

/// 100 ms doubling per attempt, at most 5 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(5))
}
