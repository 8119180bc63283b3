//! The first event after a cold start: a producer built by
//! `KafkaSettings::producer` delivers its first message within a fraction
//! of the 500 ms that librdkafka's producer-id timer would add (see
//! `connect_early` and docs/PERFORMANCE.md, "First event after a cold
//! start"), for every producer profile, against tansu.

use std::time::{Duration, Instant};

use evidentsource_kafka_config::{KafkaContext, KafkaSettings, ProducerProfile};
use evidentsource_local_servers::{create_topic, shared, unique_name};
use rdkafka::producer::FutureRecord;

/// Far below the 500 ms the producer-id timer costs, with room for a
/// loaded 2-core machine (on an idle one it is about 20 ms).
const FIRST_DELIVERY: Duration = Duration::from_millis(250);

fn settings(brokers: &str) -> KafkaSettings {
    KafkaSettings::from_lookup(|k| (k == "KAFKA_BROKERS").then(|| brokers.to_owned()))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// From building the producer to its first delivery confirmed, the event
/// sent as soon as the producer exists (the worst case: a cold start whose
/// event is already waiting).
async fn first_delivery(
    settings: &KafkaSettings,
    profile: ProducerProfile,
    topic: &str,
) -> Duration {
    let started = Instant::now();
    let producer = settings
        .producer(profile, topic, &KafkaContext::default())
        .unwrap_or_else(|e| panic!("{profile:?}: {e}"));
    producer
        .send(
            FutureRecord::<str, str>::to(topic)
                .key("first")
                .payload("first"),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("{profile:?}: produce to {topic}: {e}"));
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_producer_delivers_its_first_message_without_waiting_for_the_pid_timer() {
    let brokers = &shared().kafka_brokers;
    // An existing topic: creating one on the first request would itself
    // delay the metadata answer and hide the wait this test is about.
    let topic = unique_name("first-delivery");
    create_topic(brokers, &topic, 3).await.unwrap();
    let settings = settings(brokers);
    // Each profile twice: the wait came and went with timing, so one lucky
    // start proves little.
    let profiles = [
        ProducerProfile::Gapless,
        ProducerProfile::Bounded(Duration::from_secs(10)),
        ProducerProfile::Standard,
    ];
    for profile in profiles.into_iter().chain(profiles) {
        let took = first_delivery(&settings, profile, &topic).await;
        assert!(
            took < FIRST_DELIVERY,
            "{profile:?}: first delivery {took:?} after the producer was built (limit {FIRST_DELIVERY:?})"
        );
    }
}
