//! Reading the Database Events topic as the contract promises it
//! (docs/contract.md §2): each database's events in order, Created first,
//! each Transacted's `ce_basis` the previous `ce_revision`, Deleted last;
//! at-least-once, a re-sent event carrying the same `ce_id` and bytes.
//! [`DatabaseEvents`] skips those copies and reports any break in a
//! database's chain, so a consumer's projection never silently misses a
//! batch.

use std::time::Duration;

use evidentsource_cloudevents_kafka::decode_message;
use evidentsource_database_events::{ReceivedDatabaseEvent, SequenceProblem, SequenceTracker};
use rdkafka::{
    ClientConfig, ClientContext, Message, Offset, TopicPartitionList,
    consumer::{Consumer, ConsumerContext, DefaultConsumerContext, StreamConsumer},
    message::OwnedMessage,
};

use crate::ClientError;

/// Where a consumer group starts, and so what the first event of a
/// database may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// A new group reading the topic from its beginning, every event of
    /// every database still retained: each database must start with
    /// Created, or events are missing.
    Beginning,
    /// Where the group left off (its committed offsets), or for a group
    /// without any, the oldest event retained (unless `config` sets
    /// `auto.offset.reset`). A database's first event read starts its
    /// chain, unless [`DatabaseEvents::resume_at`] pinned it.
    Committed,
}

/// One message read.
#[derive(Debug)]
pub enum Next {
    /// An event not read before. `problems` is empty when it continues
    /// its database's chain; otherwise it says what is missing or wrong.
    Event(Delivered),
    /// A byte-identical copy of an event already read: skip it.
    Duplicate { id: String, message: OwnedMessage },
    /// Not a valid database event (headers, key and body disagree).
    Invalid {
        reason: String,
        message: OwnedMessage,
    },
}

#[derive(Debug)]
pub struct Delivered {
    pub event: ReceivedDatabaseEvent,
    pub problems: Vec<SequenceProblem>,
    /// The message as read: position, key, headers, value.
    pub message: OwnedMessage,
}

/// A consumer-group member reading the Database Events topic.
///
/// Offsets are committed (automatically, in the background) only for
/// messages the caller has finished with: a message's offset is stored
/// when the caller asks for the next one. After a crash the group
/// re-reads from the first unfinished message, and the copies it may
/// re-read come back as [`Next::Duplicate`] only within one process; a
/// consumer that keeps state pins it with [`DatabaseEvents::resume_at`].
pub struct DatabaseEvents<C = DefaultConsumerContext>
where
    C: ClientContext + ConsumerContext + 'static,
{
    consumer: StreamConsumer<C>,
    tracker: SequenceTracker,
    /// The last message handed out: (topic, partition, offset).
    finished: Option<(String, i32, i64)>,
}

impl DatabaseEvents {
    /// Joins `group` and subscribes to `topic` with `config` (how to
    /// reach the cluster).
    pub fn subscribe(
        config: &ClientConfig,
        group: &str,
        topic: &str,
        start: StartAt,
    ) -> Result<Self, ClientError> {
        Self::subscribe_with_context(config, group, topic, start, DefaultConsumerContext)
    }
}

impl<C> DatabaseEvents<C>
where
    C: ClientContext + ConsumerContext + 'static,
{
    /// [`DatabaseEvents::subscribe`] with a client context of the
    /// caller's (e.g. one that refreshes MSK IAM tokens).
    pub fn subscribe_with_context(
        config: &ClientConfig,
        group: &str,
        topic: &str,
        start: StartAt,
        context: C,
    ) -> Result<Self, ClientError> {
        let mut config = config.clone();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false");
        if start == StartAt::Beginning || config.get("auto.offset.reset").is_none() {
            config.set("auto.offset.reset", "earliest");
        }
        let consumer: StreamConsumer<C> = config
            .create_with_context(context)
            .map_err(|e| ClientError::Kafka(format!("consumer: {e}")))?;
        consumer
            .subscribe(&[topic])
            .map_err(|e| ClientError::Kafka(format!("subscribe to {topic}: {e}")))?;
        Ok(Self::from_consumer(consumer, start))
    }

    /// Around a consumer the caller built and subscribed (or assigned).
    /// It should have `enable.auto.offset.store=false`, so that only
    /// finished messages are committed.
    pub fn from_consumer(consumer: StreamConsumer<C>, start: StartAt) -> Self {
        DatabaseEvents {
            consumer,
            tracker: match start {
                StartAt::Beginning => SequenceTracker::default(),
                StartAt::Committed => SequenceTracker::resuming(),
            },
            finished: None,
        }
    }

    /// The caller's state of `database` is at `revision`: the next
    /// Transacted read of it must have that basis.
    pub fn resume_at(&mut self, database: &str, revision: u64) {
        self.tracker.resume_at(database, revision);
    }

    /// The next message (waits as long as it takes).
    pub async fn next(&mut self) -> Result<Next, ClientError> {
        self.store_finished()?;
        let message = self
            .consumer
            .recv()
            .await
            .map_err(|e| ClientError::Kafka(format!("receive: {e}")))?;
        self.finished = Some((
            message.topic().to_owned(),
            message.partition(),
            message.offset(),
        ));
        let parsed = decode_message(&message)
            .map_err(|e| e.to_string())
            .and_then(|e| {
                ReceivedDatabaseEvent::parse(message.key(), &e).map_err(|e| e.to_string())
            });
        Ok(self.classify(parsed, message.detach()))
    }

    /// [`DatabaseEvents::next`], or `None` after `wait` without a message.
    pub async fn next_within(&mut self, wait: Duration) -> Result<Option<Next>, ClientError> {
        match tokio::time::timeout(wait, self.next()).await {
            Ok(next) => next.map(Some),
            Err(_) => Ok(None),
        }
    }

    fn classify(
        &mut self,
        parsed: Result<ReceivedDatabaseEvent, String>,
        message: OwnedMessage,
    ) -> Next {
        let event = match parsed {
            Ok(event) => event,
            Err(reason) => return Next::Invalid { reason, message },
        };
        let problems = self.tracker.observe(
            &event,
            message.key().unwrap_or_default(),
            message.payload().unwrap_or_default(),
        );
        if problems.iter().any(SequenceProblem::is_duplicate) {
            return Next::Duplicate {
                id: event.id,
                message,
            };
        }
        Next::Event(Delivered {
            event,
            problems,
            message,
        })
    }

    /// Marks the message handed out last as finished, for the next
    /// automatic commit.
    fn store_finished(&mut self) -> Result<(), ClientError> {
        if let Some((topic, partition, offset)) = self.finished.take() {
            let mut list = TopicPartitionList::new();
            // The committed offset is the next one to read.
            list.add_partition_offset(&topic, partition, Offset::Offset(offset + 1))
                .map_err(|e| ClientError::Kafka(e.to_string()))?;
            self.consumer
                .store_offsets(&list)
                .map_err(|e| ClientError::Kafka(format!("store offset: {e}")))?;
        }
        Ok(())
    }
}
