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

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use rdkafka::{
    ClientContext, bindings as rd,
    producer::{FutureProducer, Producer},
    types::RDKafkaRespErr,
};

/// How long one `rd_kafka_flush` call may block: a flush whose caller
/// stopped waiting ends within about this long. Between two calls the
/// producer is not flushing for an instant only (no poll in between).
const SLICE: Duration = Duration::from_millis(100);

/// The flush [`flush_queued`] started; dropping it ends the flush (within
/// [`SLICE`]) if the messages are not all delivered by then, so a caller
/// that gives up waiting (deadline, refused credentials) leaves no thread
/// flushing behind it.
#[must_use = "the flush ends when this is dropped: hold it while awaiting the deliveries"]
#[derive(Debug)]
pub struct Flushing {
    stop: Arc<AtomicBool>,
}

impl Drop for Flushing {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Marks `producer` as flushing until everything it has queued is
/// delivered, `wait` has passed or the returned [`Flushing`] is dropped,
/// on a thread of tokio's blocking pool: queued messages go out now,
/// without waiting out `linger.ms`. Returns at once; the caller awaits its
/// deliveries as before, holding the [`Flushing`] meanwhile.
///
/// Must be called from within a tokio runtime.
pub fn flush_queued<C: ClientContext + 'static>(
    producer: &FutureProducer<C>,
    wait: Duration,
) -> Flushing {
    let producer = producer.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let until = Instant::now() + wait;
    tokio::task::spawn_blocking(move || {
        while !stopped.load(Ordering::Relaxed) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let slice_ms = i32::try_from(left.min(SLICE).as_millis()).unwrap_or(i32::MAX);
            // SAFETY: `producer` (moved here) keeps the client alive for
            // the whole call; rd_kafka_flush is thread-safe and only polls
            // the producer's queue, as its own polling thread does.
            let outcome = unsafe { rd::rd_kafka_flush(producer.client().native_ptr(), slice_ms) };
            if outcome != RDKafkaRespErr::RD_KAFKA_RESP_ERR__TIMED_OUT {
                // Everything delivered (or not a producer: nothing to do).
                break;
            }
        }
    });
    Flushing { stop }
}
