//! A fully enqueued batch goes out at once: the handler does not wait out
//! `linger.ms` (5 ms) after its last record (`flush_queued`). Against
//! rdkafka's MockCluster, so the broker costs next to nothing.

mod common;

use std::time::{Duration, Instant};

use common::*;
use evidentsource_kafka_config::{KafkaContext, KafkaSettings};
use evidentsource_stream_publisher::{Publisher, PublisherConfig};
use rdkafka::mocking::MockCluster;

const TOPIC: &str = "database-events";

/// The producers' `linger.ms`: a batch that waits it out takes at least
/// this long.
const LINGER: Duration = Duration::from_millis(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_batch_is_confirmed_sooner_than_the_linger() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic(TOPIC, 3, 1).unwrap();
    let brokers = mock.bootstrap_servers();
    let kafka =
        KafkaSettings::from_lookup(|k| (k == "KAFKA_BROKERS").then(|| brokers.clone())).unwrap();
    assert_eq!(
        kafka.producer_config().get("linger.ms"),
        Some(LINGER.as_millis().to_string().as_str()),
        "the bound below assumes the producers' linger"
    );
    let config = PublisherConfig {
        base_uri: "https://api.example.com".into(),
        topic: TOPIC.into(),
        kafka,
    };
    let publisher = Publisher::new(config, KafkaContext::default()).unwrap();
    let records = interleaved_records(&["alpha"], 30);
    // The first batch connects and fetches the producer id.
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(20);
    let warm = publisher.handle(&event(&records[..1]), deadline()).await;
    assert!(warm.unwrap().batch_item_failures.is_empty());
    // One record a batch, the common case at low load. The median of many:
    // a loaded machine slows some batches down, but no batch that waits out
    // the linger can take less than it. (A flush that marks the producer
    // flushing only for an instant, as rdkafka's `Producer::flush` does,
    // lets a few batches through early and most wait: the median tells.)
    let mut took: Vec<Duration> = Vec::new();
    for record in &records[1..] {
        let started = Instant::now();
        let response = publisher
            .handle(&event(std::slice::from_ref(record)), deadline())
            .await
            .unwrap();
        took.push(started.elapsed());
        assert!(response.batch_item_failures.is_empty());
    }
    took.sort();
    let median = took[took.len() / 2];
    assert!(
        median < LINGER,
        "one-record batches took {median:?} (median): they waited out linger.ms ({LINGER:?}); all: {took:?}"
    );
}
