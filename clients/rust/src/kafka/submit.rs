//! Submit a command to the Async Commands topic and await its one
//! response on the Async Responses topic (docs/contract.md §5).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use evidentsource_cloudevents_kafka::decode_message;
use evidentsource_commands::ReceivedResponse;
use rdkafka::{
    ClientConfig, ClientContext, Message, Offset, TopicPartitionList,
    consumer::{Consumer, ConsumerContext, DefaultConsumerContext, StreamConsumer},
    producer::{FutureProducer, FutureRecord},
};

use super::{
    AsyncCommand, CommandOutcome,
    command::outcome,
    responses::{SharedWaiters, Wait, Waiters},
};
use crate::ClientError;

/// The topics of the async path (the contract's names by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTopics {
    pub commands: String,
    pub responses: String,
}

impl Default for CommandTopics {
    fn default() -> Self {
        CommandTopics {
            commands: "evidentsource-async-commands".into(),
            responses: "evidentsource-async-responses".into(),
        }
    }
}

/// A command the broker has: its response will be keyed by
/// `correlation_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub correlation_id: String,
    pub partition: i32,
    pub offset: i64,
}

/// How long producing one command may take (the producer's own retries
/// included) before `submit` fails.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// A producer for commands and a reader of their responses. Create one per
/// process and share it: each handle reads every partition of the
/// responses topic.
pub struct AsyncCommands<C = DefaultConsumerContext>
where
    C: ClientContext + ConsumerContext + 'static,
{
    producer: FutureProducer<C>,
    topics: CommandTopics,
    source: String,
    waiters: SharedWaiters<ReceivedResponse>,
    /// The last error reading responses, for a timeout to report.
    read_error: Arc<Mutex<Option<String>>>,
    listener: tokio::task::JoinHandle<()>,
}

impl AsyncCommands {
    /// Connects with `config` (how to reach the cluster). Responses are
    /// read from the end of the responses topic as of this call, so any
    /// command submitted afterwards can be awaited.
    pub async fn connect(
        config: &ClientConfig,
        topics: CommandTopics,
    ) -> Result<Self, ClientError> {
        Self::connect_with_context(config, topics, DefaultConsumerContext).await
    }
}

impl<C> AsyncCommands<C>
where
    C: ClientContext + ConsumerContext + Clone + 'static,
{
    /// [`AsyncCommands::connect`] with a client context of the caller's
    /// (e.g. one that refreshes MSK IAM tokens).
    pub async fn connect_with_context(
        config: &ClientConfig,
        topics: CommandTopics,
        context: C,
    ) -> Result<Self, ClientError> {
        let mut writer = config.clone();
        // Unless the caller chose otherwise: every replica has a command
        // before it counts as submitted, the producer's own retries never
        // duplicate it, and a delivery settles within SEND_TIMEOUT.
        for (key, value) in [
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("message.timeout.ms", "30000"),
        ] {
            if writer.get(key).is_none() {
                writer.set(key, value);
            }
        }
        let producer: FutureProducer<C> = writer
            .create_with_context(context.clone())
            .map_err(|e| ClientError::Kafka(format!("producer: {e}")))?;
        let mut reader = config.clone();
        // Assigned partitions, no commits: a group id only because
        // librdkafka wants one.
        reader
            .set(
                "group.id",
                format!("evidentsource-client-{}", uuid::Uuid::new_v4()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false");
        let consumer: StreamConsumer<C> = reader
            .create_with_context(context)
            .map_err(|e| ClientError::Kafka(format!("consumer: {e}")))?;
        let consumer = Arc::new(consumer);
        let topic = topics.responses.clone();
        let from_end = {
            let consumer = consumer.clone();
            tokio::task::spawn_blocking(move || ends_of(&*consumer, &topic))
                .await
                .map_err(|e| ClientError::Kafka(e.to_string()))??
        };
        consumer
            .assign(&from_end)
            .map_err(|e| ClientError::Kafka(format!("assign {}: {e}", topics.responses)))?;
        let waiters: SharedWaiters<ReceivedResponse> = Arc::new(Waiters::default());
        let read_error = Arc::new(Mutex::new(None));
        let listener = tokio::spawn(listen(consumer, waiters.clone(), read_error.clone()));
        Ok(AsyncCommands {
            producer,
            topics,
            source: "urn:evidentsource:client".into(),
            waiters,
            read_error,
            listener,
        })
    }

    /// The `ce_source` of the commands this handle sends (a URI-reference
    /// naming the producer).
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// Produces `command` under a new correlation id and returns once the
    /// broker has it. Its response is kept for [`Self::await_response`].
    pub async fn submit(&self, command: &AsyncCommand) -> Result<Submitted, ClientError> {
        self.submit_as(command, &uuid::Uuid::new_v4().to_string())
            .await
    }

    /// [`Self::submit`] under a correlation id of the caller's. Sending
    /// the same command under the same id again (after a lost
    /// acknowledgement) is answered like the first; another command under
    /// it is refused with `INVALID_ARGUMENT`.
    pub async fn submit_as(
        &self,
        command: &AsyncCommand,
        correlation_id: &str,
    ) -> Result<Submitted, ClientError> {
        let message = command.message(correlation_id, &self.source)?;
        self.waiters.expect(correlation_id);
        let record = FutureRecord::to(&self.topics.commands)
            .key(correlation_id)
            .payload(&message.value)
            .headers(message.owned_headers());
        match self.producer.send(record, SEND_TIMEOUT).await {
            Ok(delivered) => Ok(Submitted {
                correlation_id: correlation_id.to_owned(),
                partition: delivered.partition,
                offset: delivered.offset,
            }),
            Err((e, _)) => {
                self.waiters.forget(correlation_id);
                Err(ClientError::Kafka(format!(
                    "produce to {}: {e}",
                    self.topics.commands
                )))
            }
        }
    }

    /// The response to the command submitted as `correlation_id`: its
    /// result, or its error typed by the contract's code
    /// ([`ClientError::Command`]). After `timeout` without one,
    /// [`ClientError::ResponseTimeout`]; the response is still kept for a
    /// later call.
    pub async fn await_response(
        &self,
        correlation_id: &str,
        timeout: Duration,
    ) -> Result<CommandOutcome, ClientError> {
        let arrival = match self.waiters.wait(correlation_id) {
            Wait::Ready(arrival) => arrival,
            Wait::Later(rx) => match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(arrival)) => arrival,
                Ok(Err(_)) | Err(_) => {
                    self.waiters.gave_up(correlation_id);
                    return Err(ClientError::ResponseTimeout {
                        correlation_id: correlation_id.to_owned(),
                        waited: timeout,
                        last_error: self.read_error.lock().ok().and_then(|e| e.clone()),
                    });
                }
            },
        };
        outcome(&arrival.map_err(ClientError::Decode)?)
    }

    /// Submits `command` and awaits its response, at most `timeout` for
    /// the response.
    pub async fn execute(
        &self,
        command: &AsyncCommand,
        timeout: Duration,
    ) -> Result<CommandOutcome, ClientError> {
        let submitted = self.submit(command).await?;
        self.await_response(&submitted.correlation_id, timeout)
            .await
    }

    /// Stops keeping the response of `correlation_id` (a caller that
    /// will not await it).
    pub fn forget(&self, correlation_id: &str) {
        self.waiters.forget(correlation_id);
    }
}

impl<C> Drop for AsyncCommands<C>
where
    C: ClientContext + ConsumerContext + 'static,
{
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Every partition of `topic` at its current end (blocking: metadata and
/// watermark requests).
fn ends_of<C: ConsumerContext>(
    consumer: &StreamConsumer<C>,
    topic: &str,
) -> Result<TopicPartitionList, ClientError> {
    let timeout = Duration::from_secs(10);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| ClientError::Kafka(format!("metadata of {topic}: {e}")))?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len())
        .filter(|n| *n > 0)
        .ok_or_else(|| ClientError::Kafka(format!("topic {topic} does not exist")))?;
    let mut list = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, timeout)
            .map_err(|e| ClientError::Kafka(format!("end of {topic}/{p}: {e}")))?;
        list.add_partition_offset(topic, p, Offset::Offset(high))
            .map_err(|e| ClientError::Kafka(e.to_string()))?;
    }
    Ok(list)
}

/// Reads responses until the handle is dropped. Errors reading are
/// transient as far as this loop goes (librdkafka reconnects on its own);
/// the last one is kept for a caller whose wait times out.
async fn listen<C: ConsumerContext + 'static>(
    consumer: Arc<StreamConsumer<C>>,
    waiters: SharedWaiters<ReceivedResponse>,
    read_error: Arc<Mutex<Option<String>>>,
) {
    loop {
        match consumer.recv().await {
            Ok(message) => {
                let Some(id) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                    continue;
                };
                let arrival = decode_message(&message)
                    .map_err(|e| e.to_string())
                    .and_then(|event| {
                        ReceivedResponse::parse(message.key(), &event).map_err(|e| e.to_string())
                    })
                    .map_err(|e| format!("response to {id} is invalid: {e}"));
                waiters.deliver(id, arrival);
            }
            Err(e) => {
                if let Ok(mut last) = read_error.lock() {
                    *last = Some(e.to_string());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
