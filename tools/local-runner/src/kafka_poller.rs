//! The Kafka event source: a consumer group on the commands topic, batches
//! of the template's size and window grouped by `topic-partition` as
//! Lambda delivers them, offsets committed only for records done with.
//!
//! On demand (no `ProvisionedPollerConfig`), a failed batch is retried until
//! it succeeds, as Lambda does there. In provisioned mode the template's
//! error handling applies, with the rules of [`crate::batcher`]: a failed
//! batch is halved (`BisectBatchOnFunctionError`), retried at most
//! `MaximumRetryAttempts` times, records older than
//! `MaximumRecordAgeInSeconds` are not invoked, and what is given up goes
//! to the on-failure queue ([`crate::kafka_failure`]) before the source
//! commits past it.

use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};

use aws_lambda_events::kafka::{KafkaEvent, KafkaRecord};
use evidentsource_kafka_event_source::{EventSource, kafka_event, poll_batch};
use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer},
};

use crate::{
    Shutdown,
    batcher::{BatchSettings, Batcher, INFINITE_RETRIES, Outcome, Step},
    kafka_failure::{Condition, FailureQueue},
    stream_poller::backoff,
    template::KafkaSettings,
};

/// How long one poll waits for a first record before looking at shutdown.
const IDLE: Duration = Duration::from_millis(250);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KafkaTotals {
    pub invocations: u64,
    /// Records the function handled.
    pub records: u64,
    pub failures: u64,
    pub bisections: u64,
    /// Records sent to the on-failure destination.
    pub given_up: u64,
    pub commits: u64,
}

/// The offsets to commit after `records` were handled: per partition, one
/// past the highest offset, but never past a record still `pending` (it is
/// read again after a restart).
pub fn next_offsets<'a>(
    records: &[KafkaRecord],
    pending: impl IntoIterator<Item = &'a KafkaRecord>,
) -> BTreeMap<(String, i32), i64> {
    let key = |r: &KafkaRecord| (r.topic.clone().unwrap_or_default(), r.partition as i32);
    let mut next = BTreeMap::new();
    for r in records {
        let entry = next.entry(key(r)).or_insert(r.offset + 1);
        *entry = (*entry).max(r.offset + 1);
    }
    for r in pending {
        if let Some(entry) = next.get_mut(&key(r)) {
            *entry = (*entry).min(r.offset);
        }
    }
    next
}

pub struct KafkaSource<C: ConsumerContext + 'static> {
    pub consumer: Arc<StreamConsumer<C>>,
    pub settings: KafkaSettings,
    pub source: EventSource,
    pub bootstrap_servers: String,
    /// The on-failure destination (provisioned mode with a
    /// `DestinationConfig`); without one, given-up records are only logged.
    pub on_failure: Option<FailureQueue>,
}

impl<C: ConsumerContext + 'static> KafkaSource<C> {
    /// Runs until `shutdown`; `invoke` is the function (`Err` = failed).
    pub async fn run<F, Fut, E>(&self, mut invoke: F, mut shutdown: Shutdown) -> KafkaTotals
    where
        F: FnMut(KafkaEvent) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let provisioned = self.settings.provisioned.as_ref();
        let mut batcher: Batcher<KafkaRecord> = Batcher::new(provisioned.map_or(
            BatchSettings {
                batch_size: self.settings.batch_size,
                max_retries: INFINITE_RETRIES,
                bisect_on_error: false,
            },
            |p| p.retries,
        ));
        let max_age = provisioned.and_then(|p| p.max_record_age);
        let mut totals = KafkaTotals::default();
        let mut poll_failures = 0u32;
        while !shutdown.is_set() {
            if batcher.is_empty() {
                match poll_batch(
                    &self.consumer,
                    self.settings.batch_size,
                    self.settings.window,
                    IDLE,
                )
                .await
                {
                    Ok(records) => {
                        poll_failures = 0;
                        batcher.push(records);
                    }
                    Err(e) => {
                        poll_failures += 1;
                        tracing::warn!(error = %e, "polling the commands topic failed");
                        shutdown.sleep(backoff(poll_failures)).await;
                    }
                }
                continue;
            }
            if let Some(age) = max_age {
                let now = chrono::Utc::now().timestamp_millis();
                let old = batcher.take_expired(|r| {
                    now.saturating_sub(r.timestamp.0.timestamp_millis()) > age.as_millis() as i64
                });
                if !old.is_empty() {
                    if !self
                        .give_up(&old, Condition::RecordAgeExceeded, 0, &mut shutdown)
                        .await
                    {
                        return totals;
                    }
                    totals.given_up += old.len() as u64;
                    self.commit(&old, &batcher, &mut totals);
                    continue;
                }
            }
            let batch = batcher.batch();
            let event = kafka_event(batch.iter().cloned(), &self.source, &self.bootstrap_servers);
            totals.invocations += 1;
            let outcome = match invoke(event).await {
                Ok(()) => Outcome::success(),
                Err(e) => {
                    totals.failures += 1;
                    tracing::warn!(error = %e, records = batch.len(), "the function failed");
                    Outcome::Failed
                }
            };
            match batcher.complete(outcome) {
                Step::Done(n) => {
                    totals.records += n as u64;
                    self.commit(&batch[..n], &batcher, &mut totals);
                }
                // Kafka records take no partial responses: `done` is 0.
                Step::Retry { attempt, .. } => {
                    tracing::warn!(attempt, records = batch.len(), "the batch is retried");
                    if !shutdown.sleep(backoff(attempt)).await {
                        // Stopping: nothing committed, the batch is read
                        // again next time.
                        return totals;
                    }
                }
                Step::Bisected { size } => {
                    totals.bisections += 1;
                    tracing::warn!(size, "the function failed; retrying with half the batch");
                }
                Step::GaveUp { records, attempts } => {
                    if !self
                        .give_up(
                            &records,
                            Condition::RetryAttemptsExhausted,
                            attempts,
                            &mut shutdown,
                        )
                        .await
                    {
                        return totals;
                    }
                    totals.given_up += records.len() as u64;
                    self.commit(&records, &batcher, &mut totals);
                }
            }
        }
        totals
    }

    /// Hands `records` to the on-failure queue, trying until it takes them
    /// (a record is not skipped before it is recorded there); false if
    /// stopped first.
    async fn give_up(
        &self,
        records: &[KafkaRecord],
        condition: Condition,
        attempts: u32,
        shutdown: &mut Shutdown,
    ) -> bool {
        let first = records.first().map(|r| (r.partition, r.offset));
        let Some(queue) = &self.on_failure else {
            tracing::error!(
                records = records.len(),
                ?first,
                condition = condition.as_str(),
                "records given up (no on-failure destination)"
            );
            return true;
        };
        let mut failures = 0;
        loop {
            match queue.send(records, condition, attempts).await {
                Ok(()) => {
                    tracing::error!(
                        records = records.len(),
                        ?first,
                        condition = condition.as_str(),
                        "records sent to the on-failure queue"
                    );
                    return true;
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "the on-failure queue did not take the records");
                    if !shutdown.sleep(backoff(failures)).await {
                        return false;
                    }
                }
            }
        }
    }

    fn commit(
        &self,
        done: &[KafkaRecord],
        batcher: &Batcher<KafkaRecord>,
        totals: &mut KafkaTotals,
    ) {
        let mut list = TopicPartitionList::new();
        for ((topic, partition), next) in next_offsets(done, batcher.pending()) {
            if let Err(e) = list.add_partition_offset(&topic, partition, Offset::Offset(next)) {
                tracing::warn!(error = %e, topic, partition, "offset not committed");
            }
        }
        // A failed commit only means the batch may be delivered again,
        // which the function answers from its recorded responses.
        match self.consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => totals.commits += 1,
            Err(e) => tracing::warn!(error = %e, "commit failed; the batch may be redelivered"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(topic: &str, partition: i64, offset: i64) -> KafkaRecord {
        let mut r = KafkaRecord::default();
        r.topic = Some(topic.into());
        r.partition = partition;
        r.offset = offset;
        r
    }

    #[test]
    fn commits_one_past_the_highest_offset_per_partition() {
        let done = [
            record("c", 0, 5),
            record("c", 1, 9),
            record("c", 0, 7),
            record("c", 0, 6),
        ];
        // (records still pending, offsets committed)
        type Committed = Vec<((String, i32), i64)>;
        let table: [(Vec<KafkaRecord>, Committed); 3] = [
            (vec![], vec![(("c".into(), 0), 8), (("c".into(), 1), 10)]),
            // Pending on other partitions or later: no effect.
            (
                vec![record("c", 2, 1), record("c", 0, 8)],
                vec![(("c".into(), 0), 8), (("c".into(), 1), 10)],
            ),
            // An earlier record of partition 0 still pending (the later ones
            // expired before it): not committed past.
            (
                vec![record("c", 0, 4)],
                vec![(("c".into(), 0), 4), (("c".into(), 1), 10)],
            ),
        ];
        for (pending, expected) in table {
            let next = next_offsets(&done, &pending);
            assert_eq!(
                next.into_iter().collect::<Vec<_>>(),
                expected,
                "{pending:?}"
            );
        }
    }
}
