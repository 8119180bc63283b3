//! Kafka helpers of the event source tests: a consumer group member, a
//! producer of test records, and the offsets a group committed.

use std::{sync::Arc, time::Duration};

use evidentsource_local_servers::{kafka_config, shared};
use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
    producer::{FutureProducer, FutureRecord},
};

pub fn consumer(group: &str, topic: &str) -> Arc<StreamConsumer> {
    let mut config = kafka_config(&shared().kafka_brokers);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    let consumer: StreamConsumer = config.create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    Arc::new(consumer)
}

pub async fn produce(topic: &str, messages: &[(i32, &str)]) {
    let producer: FutureProducer = kafka_config(&shared().kafka_brokers).create().unwrap();
    for (partition, value) in messages {
        producer
            .send(
                FutureRecord::to(topic)
                    .partition(*partition)
                    .key("k")
                    .payload(*value),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
}

/// The offsets `consumer`'s group committed on partitions 0 and 1.
pub fn committed(consumer: &StreamConsumer, topic: &str) -> Vec<Offset> {
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, 0);
    list.add_partition(topic, 1);
    consumer
        .committed_offsets(list, Duration::from_secs(10))
        .unwrap()
        .elements()
        .iter()
        .map(|e| e.offset())
        .collect()
}

/// Produces `(partition, value, create time in ms)` records.
pub async fn produce_at(topic: &str, messages: &[(i32, &str, i64)]) {
    let producer: FutureProducer = kafka_config(&shared().kafka_brokers).create().unwrap();
    for (partition, value, timestamp) in messages {
        producer
            .send(
                FutureRecord::to(topic)
                    .partition(*partition)
                    .key("k")
                    .payload(*value)
                    .timestamp(*timestamp),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
}

/// Waits until `done` holds, at most 40 s; otherwise fails with `seen`.
pub async fn within_40s(mut done: impl FnMut() -> bool, seen: impl Fn() -> String) {
    let until = tokio::time::Instant::now() + Duration::from_secs(40);
    while !done() {
        assert!(
            tokio::time::Instant::now() < until,
            "not done within 40 s: {}",
            seen()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
