//! The Kafka event source: a consumer group on the commands topic, batches
//! of the template's size and window grouped by `topic-partition` as
//! Lambda delivers them, the function invoked with each batch until it
//! succeeds (a Kafka event source has no retry limit), offsets committed
//! only after success. A batch that never succeeds is never committed past.

use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};

use aws_lambda_events::kafka::{KafkaEvent, KafkaRecord};
use evidentsource_kafka_event_source::{EventSource, kafka_event, poll_batch};
use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer},
};

use crate::{Shutdown, stream_poller::backoff, template::KafkaSettings};

/// How long one poll waits for a first record before looking at shutdown.
const IDLE: Duration = Duration::from_millis(250);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KafkaTotals {
    pub invocations: u64,
    pub records: u64,
    pub failures: u64,
    pub commits: u64,
}

/// The offsets to commit after `records` were handled: per partition, one
/// past the highest offset.
pub fn next_offsets(records: &[KafkaRecord]) -> BTreeMap<(String, i32), i64> {
    let mut next = BTreeMap::new();
    for r in records {
        let key = (r.topic.clone().unwrap_or_default(), r.partition as i32);
        let entry = next.entry(key).or_insert(r.offset + 1);
        *entry = (*entry).max(r.offset + 1);
    }
    next
}

pub struct KafkaSource<C: ConsumerContext + 'static> {
    pub consumer: Arc<StreamConsumer<C>>,
    pub settings: KafkaSettings,
    pub source: EventSource,
    pub bootstrap_servers: String,
}

impl<C: ConsumerContext + 'static> KafkaSource<C> {
    /// Runs until `shutdown`; `invoke` is the function (`Err` = failed).
    pub async fn run<F, Fut, E>(&self, mut invoke: F, mut shutdown: Shutdown) -> KafkaTotals
    where
        F: FnMut(KafkaEvent) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let mut totals = KafkaTotals::default();
        let mut poll_failures = 0u32;
        while !shutdown.is_set() {
            let records = match poll_batch(
                &self.consumer,
                self.settings.batch_size,
                self.settings.window,
                IDLE,
            )
            .await
            {
                Ok(r) => {
                    poll_failures = 0;
                    r
                }
                Err(e) => {
                    poll_failures += 1;
                    tracing::warn!(error = %e, "polling the commands topic failed");
                    shutdown.sleep(backoff(poll_failures)).await;
                    continue;
                }
            };
            if records.is_empty() {
                continue;
            }
            let offsets = next_offsets(&records);
            let event = kafka_event(
                records.iter().cloned(),
                &self.source,
                &self.bootstrap_servers,
            );
            let mut attempt = 0u32;
            loop {
                totals.invocations += 1;
                match invoke(event.clone()).await {
                    Ok(()) => {
                        totals.records += records.len() as u64;
                        self.commit(&offsets, &mut totals);
                        break;
                    }
                    Err(e) => {
                        totals.failures += 1;
                        attempt += 1;
                        tracing::warn!(
                            error = %e,
                            records = records.len(),
                            attempt,
                            "the function failed; the batch is retried"
                        );
                        if !shutdown.sleep(backoff(attempt)).await {
                            // Stopping: nothing committed, the batch is
                            // read again next time.
                            return totals;
                        }
                    }
                }
            }
        }
        totals
    }

    fn commit(&self, offsets: &BTreeMap<(String, i32), i64>, totals: &mut KafkaTotals) {
        let mut list = TopicPartitionList::new();
        for ((topic, partition), next) in offsets {
            if let Err(e) = list.add_partition_offset(topic, *partition, Offset::Offset(*next)) {
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
        let next = next_offsets(&[
            record("c", 0, 5),
            record("c", 1, 9),
            record("c", 0, 7),
            record("c", 0, 6),
        ]);
        assert_eq!(
            next.into_iter().collect::<Vec<_>>(),
            vec![(("c".into(), 0), 8), (("c".into(), 1), 10)]
        );
    }
}
