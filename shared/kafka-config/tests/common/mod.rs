//! Helpers for the tests that make real handshakes with a secured broker
//! (`SecureKafka`: tansu behind a TLS/SASL front) using this crate's own
//! settings, context and client configs.

#![allow(dead_code)]

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use evidentsource_kafka_config::{KafkaContext, KafkaSettings};
use evidentsource_local_servers::{SecureKafka, unique_name};
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
    producer::{FutureProducer, FutureRecord},
};

/// Settings from variables, as a function reads them.
pub fn settings(vars: &[(&str, &str)]) -> KafkaSettings {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    KafkaSettings::from_lookup(|k| map.get(k).cloned()).unwrap_or_else(|e| panic!("{e}"))
}

/// SASL_SSL settings for `kafka` with `mechanism` and `password`, the CA
/// from its file.
pub fn sasl_ssl(kafka: &SecureKafka, mechanism: &str, password: &str) -> KafkaSettings {
    let ca = kafka.ca_path.display().to_string();
    settings(&[
        ("KAFKA_BROKERS", &kafka.brokers),
        ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        ("KAFKA_SASL_MECHANISM", mechanism),
        ("KAFKA_SASL_USERNAME", &kafka.username),
        ("KAFKA_SASL_PASSWORD", password),
        ("KAFKA_SSL_CA_LOCATION", &ca),
    ])
}

/// Produces one message with the suite's producer settings and reads it
/// back with a consumer built from `client_config()`, both through
/// `settings` and `context`.
pub async fn round_trip(settings: &KafkaSettings, context: &KafkaContext, topic: &str) {
    let text = unique_name("message");
    let producer: FutureProducer<KafkaContext> = settings
        .producer_config()
        .create_with_context(context.clone())
        .unwrap();
    producer
        .send(
            FutureRecord::<str, str>::to(topic).payload(&text),
            Duration::from_secs(20),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("produce to {topic}: {e}"));
    let consumer = consumer_from_start(settings, context, topic);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("{text} not read back from {topic}"))
            .unwrap_or_else(|e| panic!("consume {topic}: {e}"));
        if message.payload() == Some(text.as_bytes()) {
            return;
        }
    }
}

/// A consumer of partition 0 of `topic` from its start, built from
/// `client_config()` as the local runner's event source emulation does.
pub fn consumer_from_start(
    settings: &KafkaSettings,
    context: &KafkaContext,
    topic: &str,
) -> StreamConsumer<KafkaContext> {
    let consumer: StreamConsumer<KafkaContext> = settings
        .client_config()
        .set("group.id", unique_name("reader"))
        .set("enable.auto.commit", "false")
        .create_with_context(context.clone())
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    consumer
}

/// The settings' context, as `resolve()` makes it.
pub fn context(settings: &KafkaSettings) -> KafkaContext {
    KafkaContext::for_settings(settings, None)
}
