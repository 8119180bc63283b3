//! Sending a fully enqueued batch at once instead of after `linger.ms`.
//!
//! `linger.ms` (5 ms in [`crate::KafkaSettings::producer_config`]) lets a
//! producer gather messages into fewer, larger requests while they keep
//! coming. Once a handler has enqueued its whole batch nothing more is
//! coming, and waiting out the linger only delays the answer: at 100
//! records it was most of the handler's time. librdkafka sends at once
//! while `rd_kafka_flush` runs (it marks the producer "flushing" for the
//! duration of the call).
//!
//! rdkafka's own `Producer::flush` cannot be used for this: it calls
//! `rd_kafka_flush` with no timeout in a loop and polls in between, so the
//! producer is marked flushing only for instants and the broker threads,
//! woken a moment later, usually still wait out the linger (one-record
//! batches on the mock broker: a median of 5.8 ms with it, 0.23 ms with
//! [`flush_queued`]; the stream publisher's `send_at_once` test).

use std::time::Duration;

use rdkafka::{
    ClientContext, bindings as rd,
    producer::{FutureProducer, Producer},
};

/// Marks `producer` as flushing until everything it has queued is
/// delivered or `wait` has passed, on a thread of tokio's blocking pool:
/// queued messages go out now, without waiting out `linger.ms`. Returns at
/// once; the caller awaits its deliveries as before.
///
/// Must be called from within a tokio runtime.
pub fn flush_queued<C: ClientContext + 'static>(producer: &FutureProducer<C>, wait: Duration) {
    let producer = producer.clone();
    let timeout_ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
    tokio::task::spawn_blocking(move || {
        // SAFETY: `producer` (moved here) keeps the client alive for the
        // whole call; rd_kafka_flush is thread-safe and only polls the
        // producer's queue, as its own polling thread does.
        unsafe { rd::rd_kafka_flush(producer.client().native_ptr(), timeout_ms) };
    });
}
