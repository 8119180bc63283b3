//! The demo's Kafka side, as any client would do it: produce a command,
//! read topics from the beginning without a consumer group.

use std::time::Duration;

use evidentsource_kafka_config::{ConsumerProfile, KafkaContext, KafkaSettings, ProducerProfile};
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
    message::{BorrowedMessage, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};

pub struct Kafka {
    settings: KafkaSettings,
    context: KafkaContext,
}

impl Kafka {
    /// The suite's Kafka settings (`KAFKA_BROKERS`, ...) through `lookup`.
    pub async fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut settings = KafkaSettings::from_lookup(lookup).map_err(|e| e.to_string())?;
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let context = settings.resolve(&aws).await.map_err(|e| e.to_string())?;
        Ok(Kafka { settings, context })
    }

    /// Produces one message and waits for the broker's acknowledgement.
    pub async fn produce(
        &self,
        topic: &str,
        key: &str,
        value: &[u8],
        headers: OwnedHeaders,
    ) -> Result<(i32, i64), String> {
        let producer: FutureProducer<KafkaContext> = self
            .settings
            .producer(ProducerProfile::Standard, topic, &self.context)
            .map_err(|e| format!("producer: {e}"))?;
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(value)
            .headers(headers);
        let delivered = producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| format!("produce to {topic}: {e}"))?;
        Ok((delivered.partition, delivered.offset))
    }

    /// Reads every partition of `topic` from the beginning, handing each
    /// message to `visit` until it returns false; at most `timeout`.
    pub async fn read_from_start(
        &self,
        topic: &str,
        timeout: Duration,
        mut visit: impl FnMut(&BorrowedMessage<'_>) -> bool,
    ) -> Result<(), String> {
        let consumer: StreamConsumer<KafkaContext> = self
            .settings
            .consumer(ConsumerProfile::Reader, &self.context)
            .map_err(|e| format!("consumer: {e}"))?;
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(|e| format!("metadata of {topic}: {e}"))?;
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| t.partitions().len())
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("topic {topic} does not exist"))?;
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions as i32 {
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .map_err(|e| e.to_string())?;
        }
        consumer.assign(&assignment).map_err(|e| e.to_string())?;
        let until = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(until, consumer.recv()).await {
                Err(_) => return Err(format!("{topic}: not seen within {timeout:?}")),
                Ok(Err(e)) => return Err(format!("reading {topic}: {e}")),
                Ok(Ok(message)) => {
                    if !visit(&message) {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// The message's key as text.
pub fn key_of(message: &BorrowedMessage<'_>) -> String {
    String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned()
}
