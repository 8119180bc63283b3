//! Opening a producer's broker connection at cold start.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, Producer};

use crate::KafkaContext;

/// Asks for `topic`'s metadata on a background thread, so the producer is
/// connected before the first event arrives.
///
/// Why: an idempotent producer (ours all are) first asks for its producer
/// id 500 ms after it is created, and when no broker connection is up by
/// then it tries again 500 ms later; nothing is sent before it has the id.
/// librdkafka connects lazily, so without this the first batch of every cold
/// start waits about a second; with it, about half a second (the first
/// timer), overlapping the runtime's wait for the event.
pub fn connect_early(producer: &FutureProducer<KafkaContext>, topic: &str) {
    let producer = producer.clone();
    let topic = topic.to_owned();
    std::thread::spawn(move || {
        if let Err(error) = producer
            .client()
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
        {
            // Not fatal: sending connects as well, just later.
            tracing::warn!(%error, topic, "could not reach the brokers at cold start");
        }
    });
}
