//! The async command processor: commands from the Async Commands topic
//! (a Lambda Kafka event source, MSK or self-managed) are executed against
//! the store, and each gets one response on the Async Responses topic
//! (docs/contract.md §5).
//!
//! [`Processor::handle`] is a plain async function of the Lambda Kafka
//! event; `main.rs` builds the store and the producer once per cold start.
//!
//! - Records of one partition run in offset order; partitions run
//!   concurrently.
//! - Every response is recorded in DynamoDB before it is published, and a
//!   state change records its response in the same write (see
//!   `evidentsource_storage::reply`). A re-delivered command finds its
//!   response and publishes it again, byte-identical; it is not executed
//!   again.
//! - Bad input is answered (`INVALID_ARGUMENT`), never retried. Transient
//!   trouble (DynamoDB or the broker unavailable, out of time) and a
//!   misconfigured deployment fail the invocation, so the event source
//!   delivers the batch again; the commands already answered are then only
//!   re-published.

pub mod config;
pub mod incoming;
pub mod metrics;

use aws_lambda_events::kafka::{KafkaEvent, KafkaRecord};
use evidentsource_cloudevents_kafka::{TraceContext, encode};
use evidentsource_commands::{ResponseParts, error_response, response_event, response_source};
use evidentsource_domain::Error;
use evidentsource_kafka_config::{
    KafkaAuthError, KafkaContext, ProducerProfile, cold_start_check, flush_queued,
};
use evidentsource_proto::Message;
use evidentsource_storage::{Deadline, Replied, Reply, ReplySlot, Store, StoreError};
use futures::future::join_all;
use rdkafka::{
    error::KafkaError,
    producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer},
};
use tokio::time::Instant;

pub use config::ProcessorConfig;
pub use incoming::Incoming;

use evidentsource_commands::Command;
use tracing::Instrument;

/// What one batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    pub records: usize,
    pub executed: usize,
    pub replayed: usize,
    pub refused: usize,
    /// Per response delivered: ms from the command's Kafka timestamp to
    /// the broker's confirmation of its response.
    pub response_latencies: Vec<u64>,
}

/// Why a batch must be delivered again. Everything here is transient or
/// needs an operator; a command's own faults are answered instead.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// DynamoDB unavailable or throttling, or the deployment misconfigured
    /// (permissions, table), or a recorded response unreadable.
    #[error("record {coordinates}: {source}")]
    Storage {
        coordinates: String,
        source: StoreError,
    },
    #[error("response to {correlation_id} not delivered: {source}")]
    Delivery {
        correlation_id: String,
        source: KafkaError,
    },
    #[error("response to {correlation_id} not confirmed before the function's deadline")]
    Deadline { correlation_id: String },
    /// A wrong password or an untrusted certificate: retrying cannot help
    /// until the setting named in the message is fixed.
    #[error("response to {correlation_id} not delivered: {source}")]
    Refused {
        correlation_id: String,
        source: KafkaAuthError,
    },
    #[error("record {coordinates} not processed before the function's deadline")]
    OutOfTime { coordinates: String },
    #[error("record {coordinates}: the recorded response does not decode: {message}")]
    Corrupt {
        coordinates: String,
        message: String,
    },
    #[error("cannot build the Kafka producer: {0}")]
    Producer(KafkaError),
}

enum Answer {
    Executed(Reply),
    Replayed(Reply),
    /// The correlation id was used before by a different command: answered
    /// with an error that is not recorded (the id's record belongs to the
    /// first command) but is the same on every re-delivery.
    Conflict(Reply),
}

pub struct Processor {
    config: ProcessorConfig,
    store: Store,
    producer: FutureProducer<KafkaContext>,
    context: KafkaContext,
}

impl Processor {
    /// Builds the producer (the settings of docs/contract.md §7); call once per
    /// cold start.
    pub fn new(
        config: ProcessorConfig,
        store: Store,
        context: KafkaContext,
    ) -> Result<Self, ProcessError> {
        let producer = config
            .kafka
            .producer(ProducerProfile::Standard, &config.responses_topic, &context)
            .map_err(ProcessError::Producer)?;
        Ok(Processor {
            config,
            store,
            producer,
            context,
        })
    }

    /// The cold-start check: fails when the brokers refuse the credentials
    /// or the certificate (the error names the setting), so the function's
    /// init fails instead of every batch waiting out its deadline.
    pub fn check_connection(&self, timeout: std::time::Duration) -> Result<(), KafkaAuthError> {
        cold_start_check(
            self.producer.client(),
            &self.context,
            &self.config.responses_topic,
            timeout,
        )
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Handles a batch: `Ok` only when every command's response is
    /// delivered. Stops early, with an error, once `deadline` passes.
    pub async fn handle(
        &self,
        event: &KafkaEvent,
        deadline: Instant,
    ) -> Result<BatchReport, ProcessError> {
        let mut report = BatchReport::default();
        self.handle_measured(event, deadline, &mut report).await?;
        Ok(report)
    }

    /// [`Processor::handle`], filling `report` whatever the outcome (what
    /// a failed batch did is in it too: its metrics record).
    pub async fn handle_measured(
        &self,
        event: &KafkaEvent,
        deadline: Instant,
        report: &mut BatchReport,
    ) -> Result<(), ProcessError> {
        let partitions = event
            .records
            .iter()
            .map(|(topic_partition, records)| self.partition(topic_partition, records, deadline));
        let mut first_error = None;
        for (done, error) in join_all(partitions).await {
            report.records += done.records;
            report.executed += done.executed;
            report.replayed += done.replayed;
            report.refused += done.refused;
            report.response_latencies.extend(done.response_latencies);
            if first_error.is_none() {
                first_error = error;
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// One partition's records in offset order; stops at the first error.
    /// Responses are sent as they are ready and awaited at the end.
    async fn partition(
        &self,
        topic_partition: &str,
        records: &[KafkaRecord],
        deadline: Instant,
    ) -> (BatchReport, Option<ProcessError>) {
        let topic = topic_partition
            .rsplit_once('-')
            .map_or(topic_partition, |(t, _)| t);
        let mut sorted: Vec<&KafkaRecord> = records.iter().collect();
        sorted.sort_by_key(|r| r.offset);
        let mut report = BatchReport::default();
        let mut in_flight: Vec<(String, DeliveryFuture, i64)> = Vec::new();
        let mut error = None;

        for record in sorted {
            if Instant::now() >= deadline {
                error = Some(ProcessError::OutOfTime {
                    coordinates: format!("{topic}-{}-{}", record.partition, record.offset),
                });
                break;
            }
            let incoming = Incoming::read(topic, record, &self.store.config().limits);
            let answer = match self
                .answer(&incoming, deadline)
                .instrument(command_span(&incoming))
                .await
            {
                Ok(answer) => answer,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            };
            report.records += 1;
            let reply = match answer {
                Answer::Executed(reply) => {
                    report.executed += 1;
                    if incoming.command.is_err() || is_error(&reply) {
                        report.refused += 1;
                    }
                    reply
                }
                Answer::Replayed(reply) | Answer::Conflict(reply) => {
                    report.replayed += 1;
                    reply
                }
            };
            match self.send(&reply) {
                Ok(delivery) => {
                    in_flight.push((reply.correlation_id, delivery, incoming.timestamp))
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }

        // Every response of the partition is enqueued: send them now
        // rather than after linger.ms (shared/kafka-config/src/flush.rs).
        // The flush ends when this function stops waiting.
        let _flushing = (!in_flight.is_empty()).then(|| {
            flush_queued(
                &self.producer,
                deadline.saturating_duration_since(Instant::now()),
            )
        });

        // A broker refusing our credentials or certificate ends the wait
        // as well: librdkafka would retry until the deadline, in vain.
        let refusal = self.context.auth_failed();
        tokio::pin!(refusal);
        let mut refused: Option<KafkaAuthError> = None;
        for (correlation_id, mut delivery, sent_at) in in_flight {
            let waited = match &refused {
                None => tokio::select! {
                    biased;
                    settled = tokio::time::timeout_at(deadline, &mut delivery) => {
                        settled.map_err(|_elapsed| None)
                    }
                    error = &mut refusal => Err(Some(error)),
                },
                // Stopped: only what is already confirmed counts.
                Some(error) => tokio::select! {
                    biased;
                    settled = &mut delivery => Ok(settled),
                    () = std::future::ready(()) => Err(Some(error.clone())),
                },
            };
            let failure = match waited {
                Ok(Ok(Ok(_))) => {
                    if let Some(latency) = metrics::latency_since(sent_at) {
                        report.response_latencies.push(latency);
                    }
                    None
                }
                Ok(Ok(Err((source, _)))) => Some(ProcessError::Delivery {
                    correlation_id,
                    source,
                }),
                Ok(Err(_canceled)) => Some(ProcessError::Delivery {
                    correlation_id,
                    source: KafkaError::Canceled,
                }),
                Err(None) => Some(ProcessError::Deadline { correlation_id }),
                Err(Some(source)) => {
                    refused.get_or_insert_with(|| source.clone());
                    Some(ProcessError::Refused {
                        correlation_id,
                        source,
                    })
                }
            };
            if let Some(failure) = failure {
                tracing::warn!(error = %failure, "response not delivered; the batch will be retried (if this persists, check the brokers and the responses topic)");
                error.get_or_insert(failure);
            }
        }
        (report, error)
    }

    /// The response to a command: recorded earlier, or executed and
    /// recorded now. Storage gives up at the deadline (a transient error:
    /// the batch is delivered again).
    async fn answer(&self, incoming: &Incoming, deadline: Instant) -> Result<Answer, ProcessError> {
        let storage = |source: StoreError| ProcessError::Storage {
            coordinates: incoming.coordinates.clone(),
            source,
        };
        let store = self.store.with_deadline(Deadline::at(deadline));
        if let Some(reply) = store
            .read_reply(&incoming.correlation_id)
            .await
            .map_err(storage)?
        {
            return Ok(self.earlier(incoming, reply));
        }
        // The execution continues the command's trace: a step of its own
        // (a new parent id), named in the log so a search by trace id finds it.
        let trace = incoming.trace.as_ref().map(TraceContext::child);
        if let Some(trace) = &trace {
            tracing::info!(
                correlation_id = incoming.correlation_id,
                trace_id = trace.trace_id_hex(),
                traceparent = %trace,
                "executing a traced command"
            );
        }
        let slot = ReplySlot {
            correlation_id: incoming.correlation_id.clone(),
            fingerprint: incoming.fingerprint.clone(),
            source: response_source(&self.config.base_uri),
            ttl: self.config.response_ttl,
            traceparent: trace.as_ref().map(ToString::to_string),
            tracestate: trace.and_then(|t| t.state),
        };
        let subject = incoming.subject.as_deref();
        let executed = match &incoming.command {
            Err(error) => {
                // Code and field only: messages can quote the payload.
                tracing::info!(
                    coordinates = incoming.coordinates,
                    correlation_id = incoming.correlation_id,
                    code = error.code.as_str(),
                    field = error.field.as_deref().unwrap_or(""),
                    "command refused"
                );
                store
                    .record_reply(&slot, subject, &error_response(error))
                    .await
            }
            Ok(command) => match Self::execute(&store, command, &slot).await {
                Err(StoreError::Rejected(error)) => {
                    store
                        .record_reply(&slot, subject, &error_response(&error))
                        .await
                }
                Err(StoreError::Fault(fault)) => {
                    // Corrupt data or a request DynamoDB refuses as such:
                    // executing again gives the same, so the command is
                    // answered rather than blocking its partition. The
                    // details stay in the log.
                    tracing::error!(
                        coordinates = incoming.coordinates,
                        correlation_id = incoming.correlation_id,
                        fault,
                        "command failed with a storage fault; answering INTERNAL (check the function's table permissions and TABLE_NAME)"
                    );
                    let error = Error::internal(format!(
                        "the command could not be executed (a storage fault, logged by the \
                         processor under correlation id {:?})",
                        incoming.correlation_id
                    ));
                    store
                        .record_reply(&slot, subject, &error_response(&error))
                        .await
                }
                other => other,
            },
        };
        Ok(match executed.map_err(storage)? {
            Replied::Recorded(reply) => Answer::Executed(reply),
            Replied::Earlier(reply) => self.earlier(incoming, reply),
        })
    }

    async fn execute(
        store: &Store,
        command: &Command,
        slot: &ReplySlot,
    ) -> Result<Replied, StoreError> {
        match command {
            Command::CreateDatabase(name) => store.create_database_replying(name, slot).await,
            Command::Transact(tx) => store.transact_replying(tx, slot).await,
            Command::DeleteDatabase(name) => store.delete_database_replying(name, slot).await,
        }
    }

    /// A response recorded before: the same command delivered again, or a
    /// correlation id reused for a different command.
    fn earlier(&self, incoming: &Incoming, reply: Reply) -> Answer {
        if reply.fingerprint == incoming.fingerprint {
            return Answer::Replayed(reply);
        }
        let trace = incoming.trace.as_ref().map(TraceContext::child);
        tracing::warn!(
            coordinates = incoming.coordinates,
            correlation_id = incoming.correlation_id,
            "correlation id reused for a different command"
        );
        let error = Error::invalid_argument(
            "ce_correlationid",
            format!(
                "{:?} was already used by a different command; every command needs its own",
                incoming.correlation_id
            ),
        );
        Answer::Conflict(Reply {
            correlation_id: incoming.correlation_id.clone(),
            fingerprint: incoming.fingerprint.clone(),
            source: response_source(&self.config.base_uri),
            recorded_at: incoming.timestamp,
            subject: incoming.subject.clone(),
            response: error_response(&error).encode_to_vec(),
            traceparent: trace.as_ref().map(ToString::to_string),
            tracestate: trace.and_then(|t| t.state),
        })
    }

    /// Puts the response message in flight.
    fn send(&self, reply: &Reply) -> Result<DeliveryFuture, ProcessError> {
        let parts = ResponseParts {
            correlation_id: &reply.correlation_id,
            fingerprint: &reply.fingerprint,
            source: &reply.source,
            recorded_at: reply.recorded_at,
            subject: reply.subject.as_deref(),
            response: &reply.response,
            traceparent: reply.traceparent.as_deref(),
            tracestate: reply.tracestate.as_deref(),
        };
        let event = response_event(&parts).map_err(|e| ProcessError::Corrupt {
            coordinates: reply.correlation_id.clone(),
            message: e.to_string(),
        })?;
        let message = encode(&event);
        let record = FutureRecord::to(&self.config.responses_topic)
            .key(&reply.correlation_id)
            .payload(&message.value)
            .headers(message.owned_headers());
        self.producer
            .send_result(record)
            .map_err(|(source, _)| ProcessError::Delivery {
                correlation_id: reply.correlation_id.clone(),
                source,
            })
    }
}

fn is_error(reply: &Reply) -> bool {
    reply.decode_response().is_ok_and(|r| {
        matches!(
            r.result,
            Some(evidentsource_proto::command_response::Result::Error(_)) | None
        )
    })
}

/// The span of one command's lines: its correlation id, its Kafka
/// coordinates and, once the command reads, its database and transaction
/// id (Lambda's span adds the request id).
fn command_span(incoming: &Incoming) -> tracing::Span {
    let (database, transaction_id) = match &incoming.command {
        Ok(Command::CreateDatabase(name) | Command::DeleteDatabase(name)) => {
            (Some(name.as_str()), None)
        }
        Ok(Command::Transact(tx)) => (Some(tx.database.as_str()), tx.transaction_id.as_deref()),
        Err(_) => (None, None),
    };
    tracing::info_span!(
        "command",
        correlation_id = incoming.correlation_id,
        coordinates = incoming.coordinates,
        database,
        transaction_id
    )
}
