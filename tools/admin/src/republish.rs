//! `republish --database NAME [--from-revision R]`: a database's events
//! sent again to the Database Events topic, byte-identical to what the
//! publisher sent (key, every header, value), from what the table keeps
//! (docs/replay.md).
//!
//! Each event is rebuilt as the head image the publisher read at the time
//! (`HeadItem::change`, the publisher's own derivation): Created from the
//! head's creation time, each Transacted from its transaction's first
//! chunk (batch id, recorded time) and chunk keys (basis, revision). The
//! producer is the publisher's (`build_producer`: same settings), the key
//! the database name, so a database's events keep one partition and their
//! order. Every delivery is awaited; nothing is sent unless every event
//! could be rebuilt.

use std::time::Duration;

use evidentsource_database_events::DatabaseEvent;
use evidentsource_kafka_config::{KafkaConnectError, KafkaContext, verify_connection};
use evidentsource_storage::{HeadError, HeadItem, HeadState, RecordedBatch, Store, StoreError};
use evidentsource_stream_publisher::{PublisherConfig, build_producer, kafka_headers};
use rdkafka::{
    error::KafkaError,
    producer::{FutureProducer, FutureRecord, Producer},
};

/// Deliveries in flight at once: well under librdkafka's queue.
const WINDOW: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum RepublishError {
    #[error("database {0:?} is not in the table (no head item)")]
    NotFound(String),
    #[error(
        "database {database:?}: transaction {batch} (revisions {first}..={revision}) was \
         committed before the table kept each transaction's recorded time, so its event \
         cannot be sent byte-identical; nothing was sent (republish with --from-revision \
         {revision} to send what follows it)",
        first = basis + 1
    )]
    NotRecorded {
        database: String,
        batch: String,
        basis: u64,
        revision: u64,
    },
    #[error("database {database:?}: {error}")]
    Head { database: String, error: HeadError },
    #[error("table: {0}")]
    Store(#[from] StoreError),
    #[error("Kafka: {0}")]
    Connection(#[from] KafkaConnectError),
    #[error("Kafka: cannot build the producer: {0}")]
    Producer(KafkaError),
    #[error(
        "database {database:?}: {failed} of {sent} events not acknowledged ({first}); \
         run again (consumers de-duplicate on ce_id)"
    )]
    Delivery {
        database: String,
        sent: usize,
        failed: usize,
        first: String,
    },
}

impl RepublishError {
    /// 2: fix the command or the connection (settings, network, name);
    /// 1: the table or the broker could not do it this time.
    pub fn exit_code(&self) -> u8 {
        match self {
            RepublishError::NotFound(_)
            | RepublishError::Connection(_)
            | RepublishError::Producer(_)
            | RepublishError::Store(StoreError::Misconfigured(_) | StoreError::Unavailable(_)) => 2,
            _ => 1,
        }
    }
}

/// The events to send again for `head`, in order: for an active database,
/// Created (only without `from_revision`) and the Transacted event of each
/// of `batches` (the transactions whose revision is above `from_revision`,
/// as `Store::recorded_batches` returns them); for a tombstone, its
/// Deleted event alone (the incarnation's history may be reclaimed).
pub fn events_of(
    head: &HeadItem,
    batches: &[RecordedBatch],
    from_revision: Option<u64>,
) -> Result<Vec<DatabaseEvent>, RepublishError> {
    let change = |h: &HeadItem| {
        h.change().map_err(|error| RepublishError::Head {
            database: head.name.clone(),
            error,
        })
    };
    if head.state == HeadState::Deleted {
        return Ok(vec![change(head)?]);
    }
    let mut events = Vec::with_capacity(batches.len() + 1);
    if from_revision.is_none() {
        // The head as its creation wrote it (`HeadItem::new`).
        let mut created = head.clone();
        (created.basis, created.revision) = (0, 0);
        created.revision_time = head.created_at;
        created.batch_id = None;
        events.push(change(&created)?);
    }
    for b in batches {
        // A transaction from before `t` was kept: the last one's time is
        // still on the head.
        let on_head =
            head.batch_id.as_deref() == Some(b.id.as_str()) && head.revision == b.revision;
        let time = b
            .recorded_time
            .or(on_head.then_some(head.revision_time))
            .ok_or_else(|| RepublishError::NotRecorded {
                database: head.name.clone(),
                batch: b.id.clone(),
                basis: b.basis,
                revision: b.revision,
            })?;
        let mut transacted = head.clone();
        (transacted.basis, transacted.revision) = (b.basis, b.revision);
        transacted.revision_time = time;
        transacted.batch_id = Some(b.id.clone());
        events.push(change(&transacted)?);
    }
    Ok(events)
}

/// Sends databases' events again with the publisher's producer.
pub struct Republisher {
    store: Store,
    config: PublisherConfig,
    context: KafkaContext,
    producer: FutureProducer<KafkaContext>,
    /// How long one database's deliveries may take in all (5 minutes
    /// unless set: a database's whole history may be thousands of events).
    timeout: Duration,
}

impl Republisher {
    pub fn new(
        store: Store,
        config: PublisherConfig,
        context: KafkaContext,
    ) -> Result<Self, RepublishError> {
        let producer = build_producer(&config, &context).map_err(RepublishError::Producer)?;
        Ok(Republisher {
            store,
            config,
            context,
            producer,
            timeout: Duration::from_secs(300),
        })
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Fails within 30 s (or the delivery timeout, if shorter), naming the
    /// setting, when the brokers refuse the credentials or the certificate
    /// or do not answer: before anything is read or sent.
    pub fn check_connection(&self) -> Result<(), RepublishError> {
        verify_connection(
            self.producer.client(),
            &self.context,
            Some(&self.config.topic),
            self.timeout.min(Duration::from_secs(30)),
        )?;
        Ok(())
    }

    /// What `republish` would send, read from the table.
    pub async fn plan(
        &self,
        database: &str,
        from_revision: Option<u64>,
    ) -> Result<Vec<DatabaseEvent>, RepublishError> {
        let head = self
            .store
            .read_head(database)
            .await?
            .ok_or_else(|| RepublishError::NotFound(database.to_owned()))?;
        let batches = match head.state {
            HeadState::Active => {
                self.store
                    .recorded_batches(&head, from_revision.unwrap_or(0))
                    .await?
            }
            HeadState::Deleted => Vec::new(),
        };
        events_of(&head, &batches, from_revision)
    }

    /// Reads, sends and awaits every delivery; the number of events sent.
    pub async fn republish(
        &self,
        database: &str,
        from_revision: Option<u64>,
    ) -> Result<usize, RepublishError> {
        let events = self.plan(database, from_revision).await?;
        self.send(database, &events).await
    }

    /// Sends `events` in order and waits until the broker acknowledged
    /// each (or the timeout passed).
    pub async fn send(
        &self,
        database: &str,
        events: &[DatabaseEvent],
    ) -> Result<usize, RepublishError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut acknowledged = 0;
        let mut first_failure: Option<String> = None;
        for window in events.chunks(WINDOW) {
            let mut in_flight = Vec::with_capacity(window.len());
            for event in window {
                let value = event.value();
                let record = FutureRecord::to(&self.config.topic)
                    .key(event.database())
                    .payload(&value)
                    .headers(kafka_headers(event, &self.config.base_uri));
                match self.producer.send_result(record) {
                    Ok(delivery) => in_flight.push(delivery),
                    Err((error, _)) => {
                        // Nothing after it is enqueued: no gap is sent.
                        first_failure.get_or_insert(error.to_string());
                        break;
                    }
                }
            }
            for delivery in in_flight {
                let failure = match tokio::time::timeout_at(deadline, delivery).await {
                    Ok(Ok(Ok(_))) => {
                        acknowledged += 1;
                        continue;
                    }
                    Ok(Ok(Err((error, _)))) => error.to_string(),
                    Ok(Err(_canceled)) => "the producer went away".to_owned(),
                    Err(_) => self.context.auth_failure().map_or_else(
                        || format!("not acknowledged within {:?}", self.timeout),
                        |e| e.to_string(),
                    ),
                };
                first_failure.get_or_insert(failure);
            }
            if first_failure.is_some() {
                break;
            }
        }
        match first_failure {
            None => Ok(events.len()),
            Some(first) => Err(RepublishError::Delivery {
                database: database.to_owned(),
                sent: events.len(),
                failed: events.len() - acknowledged,
                first,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use evidentsource_storage::timestamp_from_millis;

    use super::*;

    const T0: i64 = 1_705_314_600_123;

    fn head() -> HeadItem {
        let mut h = HeadItem::new("accounts", "00ff".into(), T0);
        (h.basis, h.revision, h.revision_time) = (2, 5, T0 + 50);
        h.batch_id = Some("b2".into());
        h
    }

    fn batch(id: &str, basis: u64, revision: u64, time: Option<i64>) -> RecordedBatch {
        RecordedBatch {
            id: id.into(),
            basis,
            revision,
            recorded_time: time,
        }
    }

    /// (kind, basis, revision, time in ms, batch id) of each event.
    fn shape(events: &[DatabaseEvent]) -> Vec<(&'static str, u64, u64, i64, String)> {
        let millis = |t: &Option<evidentsource_proto::Timestamp>| {
            t.map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
                .unwrap_or(-1)
        };
        events
            .iter()
            .map(|e| match e {
                DatabaseEvent::Created(d) => {
                    assert_eq!(d.created_at, d.revision_timestamp);
                    (
                        "created",
                        d.basis,
                        d.revision,
                        millis(&d.created_at),
                        String::new(),
                    )
                }
                DatabaseEvent::Transacted(b) => (
                    "transacted",
                    b.basis,
                    b.revision,
                    millis(&b.recorded_time),
                    b.id.clone(),
                ),
                DatabaseEvent::Deleted { deleted_at, .. } => {
                    ("deleted", 0, 0, millis(&Some(*deleted_at)), String::new())
                }
            })
            .collect()
    }

    #[test]
    fn events_from_the_head_and_the_recorded_batches() {
        let batches = [
            batch("b1", 0, 2, Some(T0 + 10)),
            batch("b2", 2, 5, Some(T0 + 50)),
        ];
        let all = events_of(&head(), &batches, None).unwrap();
        assert_eq!(
            shape(&all),
            [
                ("created", 0, 0, T0, String::new()),
                ("transacted", 0, 2, T0 + 10, "b1".into()),
                ("transacted", 2, 5, T0 + 50, "b2".into()),
            ]
        );
        // With a revision: no Created, only the batches given.
        let later = events_of(&head(), &batches[1..], Some(3)).unwrap();
        assert_eq!(shape(&later), [("transacted", 2, 5, T0 + 50, "b2".into())]);

        // Before `t` was kept: the last transaction's time is the head's,
        // any other refuses the whole database.
        let old_last = [batch("b2", 2, 5, None)];
        assert_eq!(
            shape(&events_of(&head(), &old_last, Some(2)).unwrap()),
            [("transacted", 2, 5, T0 + 50, "b2".into())]
        );
        let old = [batch("b1", 0, 2, None), batch("b2", 2, 5, Some(T0 + 50))];
        let refused = events_of(&head(), &old, None).unwrap_err();
        assert!(
            matches!(&refused, RepublishError::NotRecorded { batch, revision: 2, .. } if batch == "b1"),
            "{refused}"
        );
        assert!(
            refused.to_string().contains("--from-revision 2"),
            "{refused}"
        );
        assert_eq!(refused.exit_code(), 1);

        // A tombstone: its Deleted event alone.
        let mut tombstone = head();
        tombstone.state = HeadState::Deleted;
        tombstone.deleted_at = Some(T0 + 99);
        let deleted = events_of(&tombstone, &batches, None).unwrap();
        assert_eq!(shape(&deleted), [("deleted", 0, 0, T0 + 99, String::new())]);
        assert_eq!(
            deleted[0],
            DatabaseEvent::Deleted {
                database: "accounts".into(),
                created_at: timestamp_from_millis(T0),
                deleted_at: timestamp_from_millis(T0 + 99),
            }
        );
    }
}
