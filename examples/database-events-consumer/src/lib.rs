//! What a consumer of the Database Events topic does, in a few lines each:
//! read a message, decode its CloudEvent headers and protobuf body, and
//! check the per-database sequence the contract promises
//! ([`SequenceTracker`]: Created first, each Transacted's `ce_basis` equal
//! to the previous `ce_revision`, Deleted last; duplicates carry the same
//! `ce_id` and bytes).

use std::{fmt::Write as _, io::Write, time::Duration};

use evidentsource_cloudevents_kafka::decode_message;
use evidentsource_database_events::ReceivedDatabaseEvent;
pub use evidentsource_database_events::{SequenceTracker, describe};
use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
};

/// How long `--exit-when-idle` waits for the first message (a consumer
/// group's join included).
const FIRST_MESSAGE_WAIT: Duration = Duration::from_secs(30);

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
