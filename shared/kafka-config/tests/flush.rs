//! `flush_queued` leaves no thread behind: when its caller stops waiting
//! (drops the `Flushing`), the flush ends within a fraction of a second
//! even though the messages it flushes can never be delivered.

use std::time::{Duration, Instant};

use evidentsource_kafka_config::{KafkaContext, KafkaSettings, flush_queued};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// What the flush is given to wait: long enough that a flush that outlived
/// its `Flushing` shows.
const WAIT: Duration = Duration::from_secs(20);

#[test]
fn a_flush_ends_when_its_caller_stops_waiting() {
    // Nothing listens on port 9: the message stays queued.
    let settings =
        KafkaSettings::from_lookup(|k| (k == "KAFKA_BROKERS").then(|| "127.0.0.1:9".to_owned()))
            .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let producer: FutureProducer<KafkaContext> = settings
        .producer_config()
        .create_with_context(KafkaContext::default())
        .unwrap();
    runtime.block_on(async {
        let delivery = producer
            .send_result(FutureRecord::<str, str>::to("t").payload("never"))
            .map_err(|(e, _)| e)
            .unwrap();
        let flushing = flush_queued(&producer, WAIT);
        // The caller gives up, as the publisher does at its deadline.
        let waited = tokio::time::timeout(Duration::from_millis(200), delivery).await;
        assert!(waited.is_err(), "delivered to nowhere: {waited:?}");
        drop(flushing);
    });
    // Dropping a runtime waits for its blocking threads, the flush's too.
    let started = Instant::now();
    drop(runtime);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the flush went on for {:?} after its caller stopped waiting",
        started.elapsed()
    );
}
