//! What a consumer of the Database Events topic does, in a few lines each:
//! read a message, decode its CloudEvent headers and protobuf body, and
//! check the per-database sequence the contract promises (Created first,
//! each Transacted's `ce_basis` equal to the previous `ce_revision`,
//! Deleted last; duplicates carry the same `ce_id` and bytes).

use std::{collections::HashMap, fmt::Write as _, io::Write, time::Duration};

use evidentsource_cloudevents_kafka::decode_message;
use evidentsource_database_events::{
    ReceivedBody, ReceivedDatabaseEvent, format_time, to_datetime,
};
use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
    message::{BorrowedMessage, Headers},
};

/// How long `--exit-when-idle` waits for the first message (a consumer
/// group's join included).
const FIRST_MESSAGE_WAIT: Duration = Duration::from_secs(30);

/// Per-database state a consumer keeps to notice gaps and duplicates.
#[derive(Debug, Default)]
pub struct SequenceTracker {
    /// The revision of the last event per database; `None` once deleted.
    last: HashMap<String, Option<u64>>,
    /// ce_id → (key, value) of the first copy, to tell duplicates.
    seen: HashMap<String, (Vec<u8>, Vec<u8>)>,
}

impl SequenceTracker {
    /// Checks one received event; returns the problems found (empty if
    /// the event continues its database's sequence).
    pub fn observe(
        &mut self,
        event: &ReceivedDatabaseEvent,
        key: &[u8],
        value: &[u8],
    ) -> Vec<String> {
        if let Some((k, v)) = self.seen.get(&event.id) {
            return if k == key && v == value {
                vec![format!(
                    "DUPLICATE of {} (byte-identical, skip it)",
                    event.id
                )]
            } else {
                vec![format!("DUPLICATE ID {} WITH DIFFERENT CONTENT", event.id)]
            };
        }
        self.seen
            .insert(event.id.clone(), (key.to_vec(), value.to_vec()));
        let last = self.last.get(&event.database).copied().flatten();
        let mut problems = Vec::new();
        match &event.body {
            ReceivedBody::Created(_) => {
                if let Some(r) = last {
                    problems.push(format!(
                        "CREATED while the database is at revision {r} (missed Deleted?)"
                    ));
                }
                self.last.insert(event.database.clone(), Some(0));
            }
            ReceivedBody::Transacted(b) => {
                match last {
                    None => problems.push(format!(
                        "GAP: Transacted at basis {} without Created",
                        b.basis
                    )),
                    Some(r) if r != b.basis => {
                        problems.push(format!("GAP: expected basis {r}, got {}", b.basis))
                    }
                    Some(_) => {}
                }
                self.last.insert(event.database.clone(), Some(b.revision));
            }
            ReceivedBody::Deleted => {
                if last.is_none() {
                    problems.push("DELETED without Created".to_string());
                }
                self.last.insert(event.database.clone(), None);
            }
        }
        problems
    }
}

/// A readable rendering of one message: position, key, headers, body.
pub fn describe(message: &BorrowedMessage<'_>, event: Option<&ReceivedDatabaseEvent>) -> String {
    let mut out = String::new();
    let key = String::from_utf8_lossy(message.key().unwrap_or_default());
    let _ = writeln!(
        out,
        "[partition {} offset {}] key={key}",
        message.partition(),
        message.offset()
    );
    if let Some(headers) = message.headers() {
        for h in headers.iter() {
            let _ = writeln!(
                out,
                "  {}: {}",
                h.key,
                String::from_utf8_lossy(h.value.unwrap_or_default())
            );
        }
    }
    let ts = |t: &Option<evidentsource_proto::Timestamp>| {
        t.as_ref()
            .and_then(to_datetime)
            .map(|t| format_time(&t))
            .unwrap_or_default()
    };
    match event.map(|e| &e.body) {
        Some(ReceivedBody::Created(d)) => {
            let _ = writeln!(
                out,
                "  body: Database {{ name: {}, created_at: {}, basis: {}, revision: {} }}",
                d.name,
                ts(&d.created_at),
                d.basis,
                d.revision
            );
        }
        Some(ReceivedBody::Transacted(b)) => {
            let _ = writeln!(
                out,
                "  body: BatchSummary {{ id: {}, database: {}, basis: {}, revision: {}, event_count: {}, recorded_time: {} }}",
                b.id,
                b.database,
                b.basis,
                b.revision,
                b.event_count,
                ts(&b.recorded_time)
            );
        }
        Some(ReceivedBody::Deleted) => {
            let _ = writeln!(out, "  body: (empty)");
        }
        None => {}
    }
    out
}

/// Consumes `topic` and writes each event, with any problem on a line of
/// its own, to `out`. Stops after `idle` without a message (if given) or
/// after `max` messages. Returns the number of problems found.
pub async fn consume(
    config: ClientConfig,
    topic: &str,
    out: &mut impl Write,
    idle: Option<Duration>,
    max: Option<usize>,
) -> Result<usize, String> {
    let consumer: StreamConsumer<evidentsource_kafka_config::KafkaContext> = config
        .create_with_context(evidentsource_kafka_config::KafkaContext::default())
        .map_err(|e| format!("consumer: {e}"))?;
    consume_with(consumer, topic, out, idle, max).await
}

/// [`consume`] with a consumer built by the caller (e.g. for MSK IAM).
pub async fn consume_with<C>(
    consumer: StreamConsumer<C>,
    topic: &str,
    out: &mut impl Write,
    idle: Option<Duration>,
    max: Option<usize>,
) -> Result<usize, String>
where
    C: rdkafka::consumer::ConsumerContext + 'static,
{
    consumer
        .subscribe(&[topic])
        .map_err(|e| format!("subscribe: {e}"))?;
    let mut tracker = SequenceTracker::default();
    let mut problems = 0;
    let mut count = 0;
    loop {
        if max.is_some_and(|m| count >= m) {
            return Ok(problems);
        }
        // Joining a consumer group takes a while: the idle clock starts
        // with the first message.
        let wait = idle.map(|idle| {
            if count == 0 {
                idle.max(FIRST_MESSAGE_WAIT)
            } else {
                idle
            }
        });
        let message = match wait {
            Some(idle) => match tokio::time::timeout(idle, consumer.recv()).await {
                Ok(m) => m,
                Err(_) => return Ok(problems),
            },
            None => consumer.recv().await,
        };
        let message = message.map_err(|e| format!("receive: {e}"))?;
        count += 1;
        let parsed = decode_message(&message)
            .map_err(|e| e.to_string())
            .and_then(|event| {
                ReceivedDatabaseEvent::parse(message.key(), &event).map_err(|e| e.to_string())
            });
        let mut text = describe(&message, parsed.as_ref().ok());
        let found = match &parsed {
            Ok(event) => tracker.observe(
                event,
                message.key().unwrap_or_default(),
                message.payload().unwrap_or_default(),
            ),
            Err(e) => vec![format!("INVALID: {e}")],
        };
        for p in &found {
            let _ = writeln!(text, "  !! {p}");
        }
        problems += found.len();
        out.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    }
}
