//! The stream publisher: DynamoDB stream records of head items become
//! CloudEvents on the Database Events topic (docs/contract.md §2).
//!
//! [`Publisher::handle`] is a plain async function from a Lambda DynamoDB
//! event to the `ReportBatchItemFailures` response; `main.rs` builds the
//! producer once per cold start.
//!
//! Delivery: all messages of a batch are in flight together, sent as soon
//! as the last is enqueued (without waiting out `linger.ms`), and every
//! delivery is awaited. If any fails, the earliest failed record is reported,
//! so Lambda retries from it and nothing after it is skipped; messages after
//! it that did get through are re-sent byte-identical (same `ce_id`).
//! Per-database order needs more than that, because librdkafka could deliver
//! a later message of a partition after an earlier one failed (a gap). The
//! producer closes those doors: the gapless guarantee turns any error that
//! could leave a gap into a fatal one that stops the producer (it is then
//! rebuilt), and messages never time out inside librdkafka (the only gap the
//! guarantee does not cover); the handler's own deadline, from the Lambda
//! context, bounds the wait instead.

pub mod config;
pub mod dead_letter;
pub mod metrics;
pub mod record;

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use aws_lambda_events::event::{
    dynamodb::Event as DynamoDbEvent,
    streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse},
};
use evidentsource_database_events::DatabaseEvent;
use evidentsource_kafka_config::{
    KafkaAuthError, KafkaContext, ProducerProfile, cold_start_check, flush_queued,
};
use rdkafka::{
    ClientConfig,
    error::{KafkaError, RDKafkaErrorCode},
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord, Producer},
};
use tokio::time::Instant;

pub use config::PublisherConfig;
pub use dead_letter::{DeadLetter, DeadLetterQueue};
pub use metrics::BatchMetrics;
pub use record::{Classified, classify};

/// Counters since cold start.
#[derive(Debug, Default)]
pub struct Stats {
    pub published: AtomicU64,
    pub skipped: AtomicU64,
    pub poison: AtomicU64,
    pub failed: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("record {index} failed and has no sequence number to report")]
    MissingSequenceNumber { index: usize },
    #[error("cannot build the Kafka producer: {0}")]
    Producer(#[from] KafkaError),
}

/// Whether retrying a failed delivery can help. Both are reported as batch
/// item failures (a skipped database event would be a gap); the kind only
/// changes the log line an operator reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Broker unavailable, leader moving, throttled, out of time.
    Transient,
    /// Authorization, a missing topic, a message the broker refuses:
    /// retries fail until someone fixes the cause.
    Permanent,
}

pub fn failure_kind(error: &KafkaError) -> FailureKind {
    use RDKafkaErrorCode as C;
    match error.rdkafka_error_code() {
        Some(
            C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::MessageBatchTooLarge
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::UnknownTopic
            | C::UnknownTopicOrPartition
            | C::InvalidTopic
            | C::InvalidRecord
            | C::InvalidMessage
            | C::BadMessage
            | C::InvalidRequiredAcks
            | C::UnsupportedVersion
            | C::Fatal
            | C::GaplessGuarantee,
        ) => FailureKind::Permanent,
        _ => FailureKind::Transient,
    }
}

pub struct Publisher {
    config: PublisherConfig,
    context: KafkaContext,
    producer: Mutex<Arc<FutureProducer<KafkaContext>>>,
    dead_letters: Option<DeadLetterQueue>,
    stats: Stats,
    /// The last sequence number tried in a batch that reported a failure:
    /// Lambda sends those records again (`RecordsResent`).
    retried_up_to: Mutex<Option<String>>,
}

impl Publisher {
    /// Builds the producer; call once per cold start.
    pub fn new(config: PublisherConfig, context: KafkaContext) -> Result<Self, PublishError> {
        let producer = Arc::new(build_producer(&config, &context)?);
        Ok(Publisher {
            config,
            context,
            producer: Mutex::new(producer),
            dead_letters: None,
            stats: Stats::default(),
            retried_up_to: Mutex::new(None),
        })
    }

    /// Where records that can never be published are sent (see
    /// [`dead_letter`]); without one they are only logged.
    pub fn with_dead_letters(mut self, queue: Option<DeadLetterQueue>) -> Self {
        self.dead_letters = queue;
        self
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The cold-start check: fails when the brokers refuse the credentials
    /// or the certificate (the error names the setting), so the function's
    /// init fails instead of every batch waiting out its deadline.
    pub fn check_connection(&self, timeout: std::time::Duration) -> Result<(), KafkaAuthError> {
        let producer = self.producer();
        cold_start_check(
            producer.client(),
            &self.context,
            &self.config.topic,
            timeout,
        )
    }

    fn producer(&self) -> Arc<FutureProducer<KafkaContext>> {
        self.producer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A producer stopped by a fatal error is replaced for the next batch.
    fn replace_if_fatal(&self, producer: &FutureProducer<KafkaContext>) {
        if let Some((code, reason)) = producer.client().fatal_error() {
            tracing::error!(
                ?code,
                reason,
                "the Kafka producer hit a fatal error; building a new one"
            );
            match build_producer(&self.config, &self.context) {
                Ok(fresh) => {
                    *self.producer.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh)
                }
                Err(e) => {
                    tracing::error!(error = %e, "rebuilding the Kafka producer failed: the next batch tries again (if this persists, fix the Kafka setting the error names)")
                }
            }
        }
    }

    /// Publishes a batch; waits for every delivery until `deadline`.
    pub async fn handle(
        &self,
        event: &DynamoDbEvent,
        deadline: Instant,
    ) -> Result<DynamoDbEventResponse, PublishError> {
        self.handle_measured(event, deadline, &mut BatchMetrics::default())
            .await
    }

    /// [`Publisher::handle`], counting into `metrics` what became of the
    /// batch's records (filled on error paths too).
    pub async fn handle_measured(
        &self,
        event: &DynamoDbEvent,
        deadline: Instant,
        metrics: &mut BatchMetrics,
    ) -> Result<DynamoDbEventResponse, PublishError> {
        let retried_up_to = self
            .retried_up_to
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let producer = self.producer();
        let topic = self.config.topic.as_str();
        let mut in_flight = Vec::with_capacity(event.records.len());
        let mut earliest_failure: Option<usize> = None;
        let mut last_tried = None;

        for (index, record) in event.records.iter().enumerate() {
            last_tried = Some(index);
            let event = match classify(record) {
                Classified::Publish(event) => event,
                Classified::Skip(_) => {
                    self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Classified::Poison(reason) => {
                    self.stats.poison.fetch_add(1, Ordering::Relaxed);
                    metrics.poison += 1;
                    if self.dead_letter(record, &reason, deadline).await {
                        continue;
                    }
                    // Not recorded anywhere: Lambda retries from here.
                    earliest_failure = Some(index);
                    break;
                }
            };
            let value = event.value();
            let message = FutureRecord::to(topic)
                .key(event.database())
                .payload(&value)
                .headers(kafka_headers(&event, &self.config.base_uri));
            match producer.send_result(message) {
                Ok(delivery) => in_flight.push((index, delivery)),
                Err((error, _)) => {
                    // Queue full or producer stopped: nothing after this
                    // record is enqueued; Lambda retries from here.
                    metrics.count_failure(self.log_failure(record, &error));
                    earliest_failure = Some(index);
                    break;
                }
            }
        }

        // The whole batch is enqueued: send it now rather than after
        // linger.ms, which only pays while messages keep coming. The flush
        // ends when this function stops waiting (`_flushing` dropped).
        let _flushing = (!in_flight.is_empty()).then(|| {
            flush_queued(
                &producer,
                deadline.saturating_duration_since(Instant::now()),
            )
        });

        // One timer for the whole batch (not one per delivery); a delivery
        // that is already confirmed counts even after the deadline. A broker
        // refusing our credentials or certificate ends the wait as well:
        // librdkafka would retry until the deadline, in vain.
        let out_of_time = tokio::time::sleep_until(deadline);
        tokio::pin!(out_of_time);
        let refusal = self.context.auth_failed();
        tokio::pin!(refusal);
        let mut refused: Option<KafkaAuthError> = None;
        for (index, mut delivery) in in_flight {
            let outcome = match &refused {
                None => tokio::select! {
                    biased;
                    confirmed = &mut delivery => Ok(confirmed),
                    () = &mut out_of_time => Err(None),
                    error = &mut refusal => Err(Some(error)),
                },
                // Stopped: only what is already confirmed counts.
                Some(error) => tokio::select! {
                    biased;
                    confirmed = &mut delivery => Ok(confirmed),
                    () = std::future::ready(()) => Err(Some(error.clone())),
                },
            };
            let failed = match outcome {
                Ok(Ok(Ok(_))) => {
                    self.stats.published.fetch_add(1, Ordering::Relaxed);
                    metrics.published_one(&event.records[index], retried_up_to.as_deref());
                    false
                }
                Ok(Ok(Err((error, _)))) => {
                    metrics.count_failure(self.log_failure(&event.records[index], &error));
                    true
                }
                Ok(Err(_canceled)) => {
                    tracing::warn!(
                        index,
                        "delivery canceled: the producer went away (Lambda retries from this \
                         record)"
                    );
                    metrics.count_failure(FailureKind::Transient);
                    true
                }
                Err(None) => {
                    tracing::warn!(
                        index,
                        "delivery not confirmed before the function's deadline (Lambda \
                         retries from this record; many of these: raise the function's \
                         timeout or lower the batch size)"
                    );
                    metrics.count_failure(FailureKind::Transient);
                    true
                }
                Err(Some(error)) => {
                    if refused.is_none() {
                        tracing::error!(
                            index, error = %error,
                            "deliveries stopped: the broker refused the connection \
                             (Lambda retries from this record)"
                        );
                        refused = Some(error);
                    }
                    metrics.count_failure(FailureKind::Permanent);
                    true
                }
            };
            if failed {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                earliest_failure = Some(earliest_failure.map_or(index, |e| e.min(index)));
            }
        }
        self.replace_if_fatal(&producer);

        if earliest_failure.is_some()
            && let Some(last) =
                last_tried.and_then(|i| event.records[i].change.sequence_number.clone())
        {
            *self.retried_up_to.lock().unwrap_or_else(|e| e.into_inner()) = Some(last);
        }
        let mut response = DynamoDbEventResponse::default();
        if let Some(index) = earliest_failure {
            let sequence_number = event.records[index]
                .change
                .sequence_number
                .clone()
                .ok_or(PublishError::MissingSequenceNumber { index })?;
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence_number);
            response.batch_item_failures.push(failure);
        }
        Ok(response)
    }

    /// Sends a record that can never be published to the dead-letter
    /// queue; false when it did not get there (in time), so the caller
    /// reports it as failed rather than skip it unrecorded.
    async fn dead_letter(
        &self,
        record: &aws_lambda_events::event::dynamodb::EventRecord,
        reason: &str,
        deadline: Instant,
    ) -> bool {
        let letter = DeadLetter::of(record, reason);
        let sequence_number = letter.sequence_number.as_deref().unwrap_or("?");
        let database = letter.database.as_deref().unwrap_or("?");
        let Some(queue) = &self.dead_letters else {
            tracing::error!(
                sequence_number,
                database,
                reason,
                "skipping a head record that can never be published \
                 (no DEAD_LETTER_QUEUE_URL: this log line is its only record); repair the \
                 item, then run `evidentsource-admin republish --database` for it"
            );
            return true;
        };
        match tokio::time::timeout_at(deadline, queue.send(&letter)).await {
            Ok(Ok(())) => {
                tracing::error!(
                    sequence_number,
                    database,
                    reason,
                    "a head record that can never be published went to the dead-letter \
                     queue; repair the item, then run `evidentsource-admin dlq replay` \
                     (docs/replay.md)"
                );
                true
            }
            outcome => {
                let error = match outcome {
                    Ok(Err(e)) => e,
                    _ => "out of time".to_owned(),
                };
                tracing::error!(
                    sequence_number,
                    database,
                    reason,
                    error,
                    "a head record that can never be published could not be sent to the \
                     dead-letter queue; Lambda retries from this record"
                );
                false
            }
        }
    }

    fn log_failure(
        &self,
        record: &aws_lambda_events::event::dynamodb::EventRecord,
        error: &KafkaError,
    ) -> FailureKind {
        let sequence_number = record.change.sequence_number.as_deref().unwrap_or("?");
        let database = record::database_of(record);
        let database = database.as_deref().unwrap_or("?");
        let batch_id = record::batch_id_of(record);
        let batch_id = batch_id.as_deref().unwrap_or("-");
        let kind = failure_kind(error);
        match kind {
            FailureKind::Transient => tracing::warn!(
                sequence_number, database, batch_id, error = %error,
                "delivery failed (transient: Lambda retries from this record)"
            ),
            FailureKind::Permanent => tracing::error!(
                sequence_number, database, batch_id, error = %error,
                "delivery failed (permanent: retries fail until the cause is fixed; \
                 exhausted retries go to the on-failure destination)"
            ),
        }
        kind
    }
}

/// The event's headers written straight into rdkafka's (no intermediate
/// CloudEvent or header list: this runs once per record).
pub fn kafka_headers(event: &DatabaseEvent, base_uri: &str) -> OwnedHeaders {
    let mut headers = Some(OwnedHeaders::new_with_capacity(10));
    event.write_headers(base_uri, |key, value| {
        // `insert` takes the headers by value.
        headers = headers.take().map(|h| {
            h.insert(Header {
                key,
                value: Some(value),
            })
        });
    });
    headers.unwrap_or_default()
}

/// The producer settings of docs/contract.md §7 plus the two that keep
/// per-partition order under failure (see the crate docs).
pub fn producer_config(config: &PublisherConfig) -> ClientConfig {
    config.kafka.producer_config_for(ProducerProfile::Gapless)
}

/// The publisher's producer (also `evidentsource-admin republish`'s: same settings, same
/// bytes on the wire).
pub fn build_producer(
    config: &PublisherConfig,
    context: &KafkaContext,
) -> Result<FutureProducer<KafkaContext>, KafkaError> {
    config
        .kafka
        .producer(ProducerProfile::Gapless, &config.topic, context)
}

#[cfg(test)]
mod tests {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode as C};

    use super::*;

    #[test]
    fn headers_go_to_rdkafka_as_the_binding_encodes_them() {
        use evidentsource_proto::{BatchSummary, Database, Timestamp};
        use rdkafka::message::Headers;
        let at = Timestamp {
            seconds: 1_705_314_605,
            nanos: 456_000_000,
        };
        let events = [
            DatabaseEvent::Created(Database {
                name: "accounts".into(),
                created_at: Some(at),
                revision_timestamp: Some(at),
                ..Default::default()
            }),
            DatabaseEvent::Transacted(BatchSummary {
                id: "b-1".into(),
                database: "accounts".into(),
                basis: 3,
                revision: 5,
                event_count: 2,
                recorded_time: Some(at),
            }),
            DatabaseEvent::Deleted {
                database: "accounts".into(),
                created_at: at,
                deleted_at: at,
            },
        ];
        for event in events {
            let direct = kafka_headers(&event, "https://x");
            let direct: Vec<(String, Vec<u8>)> = direct
                .iter()
                .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                .collect();
            assert_eq!(direct, event.encode("https://x").message.headers);
            assert!(direct.len() >= 7, "{direct:?}");
        }
    }

    #[test]
    fn kafka_errors_are_told_apart() {
        for code in [
            C::TopicAuthorizationFailed,
            C::MessageSizeTooLarge,
            C::UnknownTopicOrPartition,
            C::GaplessGuarantee,
        ] {
            assert_eq!(
                failure_kind(&KafkaError::MessageProduction(code)),
                FailureKind::Permanent,
                "{code:?}"
            );
        }
        for code in [
            C::MessageTimedOut,
            C::AllBrokersDown,
            C::NotLeaderForPartition,
            C::RequestTimedOut,
            C::QueueFull,
        ] {
            assert_eq!(
                failure_kind(&KafkaError::MessageProduction(code)),
                FailureKind::Transient,
                "{code:?}"
            );
        }
    }
}
