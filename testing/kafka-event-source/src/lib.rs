//! Lambda's Kafka event source, reproduced: messages become
//! [`KafkaRecord`]s (base64 key and value, each header a one-entry map of
//! signed bytes) grouped by `topic-partition` into a [`KafkaEvent`], in the
//! shape MSK and self-managed Kafka event sources deliver. Tests and the
//! local runner feed the async command processor with it.

use std::{collections::HashMap, time::Duration};

use aws_lambda_events::{
    encodings::MillisecondTimestamp,
    kafka::{KafkaEvent, KafkaRecord},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{TimeZone, Utc};
use rdkafka::{
    Message, Timestamp,
    consumer::{ConsumerContext, StreamConsumer},
    message::Headers,
};

/// Which event source the event imitates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSource {
    /// `aws:kafka`, with the cluster's ARN.
    Msk { cluster_arn: String },
    /// `SelfManagedKafka`.
    SelfManaged,
}

/// A consumed message as a Lambda Kafka record.
pub fn lambda_record<M: Message>(message: &M) -> KafkaRecord {
    let (millis, timestamp_type) = match message.timestamp() {
        Timestamp::CreateTime(ms) => (ms, Some("CREATE_TIME")),
        Timestamp::LogAppendTime(ms) => (ms, Some("LOG_APPEND_TIME")),
        Timestamp::NotAvailable => (0, None),
    };
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| {
                    let bytes = h.value.unwrap_or_default();
                    HashMap::from([(h.key.to_owned(), bytes.iter().map(|b| *b as i8).collect())])
                })
                .collect()
        })
        .unwrap_or_default();
    let mut record = KafkaRecord::default();
    record.topic = Some(message.topic().to_owned());
    record.partition = i64::from(message.partition());
    record.offset = message.offset();
    record.timestamp = MillisecondTimestamp(
        Utc.timestamp_millis_opt(millis)
            .single()
            .unwrap_or_default(),
    );
    record.timestamp_type = timestamp_type.map(str::to_owned);
    record.key = message.key().map(|k| STANDARD.encode(k));
    record.value = message.payload().map(|v| STANDARD.encode(v));
    record.headers = headers;
    record
}

/// Records grouped by `topic-partition`, each group in the order given.
pub fn kafka_event(
    records: impl IntoIterator<Item = KafkaRecord>,
    source: &EventSource,
    bootstrap_servers: &str,
) -> KafkaEvent {
    let mut grouped: HashMap<String, Vec<KafkaRecord>> = HashMap::new();
    for record in records {
        let key = format!(
            "{}-{}",
            record.topic.as_deref().unwrap_or_default(),
            record.partition
        );
        grouped.entry(key).or_default().push(record);
    }
    let mut event = KafkaEvent::default();
    match source {
        EventSource::Msk { cluster_arn } => {
            event.event_source = Some("aws:kafka".to_owned());
            event.event_source_arn = Some(cluster_arn.clone());
        }
        EventSource::SelfManaged => event.event_source = Some("SelfManagedKafka".to_owned()),
    }
    event.bootstrap_servers = Some(bootstrap_servers.to_owned());
    event.records = grouped;
    event
}

/// Polls up to `max_records` messages, waiting at most `window` after the
/// first one (Lambda's batch size and batching window); `idle` bounds the
/// wait for the first. Offsets are not committed here. An error after the
/// first record ends the batch early instead of discarding it.
pub async fn poll_batch<C: ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    max_records: usize,
    window: Duration,
    idle: Duration,
) -> Result<Vec<KafkaRecord>, rdkafka::error::KafkaError> {
    let mut records = Vec::new();
    let first = match tokio::time::timeout(idle, consumer.recv()).await {
        Err(_) => return Ok(records),
        Ok(message) => message?,
    };
    records.push(lambda_record(&first));
    let until = tokio::time::Instant::now() + window;
    while records.len() < max_records {
        match tokio::time::timeout_at(until, consumer.recv()).await {
            Err(_) => break,
            Ok(Ok(message)) => records.push(lambda_record(&message)),
            // The records already read are consumed: hand them over (the
            // error comes back on the next poll) rather than lose them.
            Ok(Err(_)) => break,
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};

    use super::*;

    #[test]
    fn records_look_like_lambdas() {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "ce_type",
                value: Some(&[0xc3u8, 0xa9][..]),
            })
            .insert(Header {
                key: "empty",
                value: None::<&[u8]>,
            });
        let message = OwnedMessage::new(
            Some(b"value".to_vec()),
            Some(b"key".to_vec()),
            "commands".into(),
            Timestamp::CreateTime(1_595_035_749_700),
            2,
            7,
            Some(headers),
        );
        let record = lambda_record(&message);
        assert_eq!(record.key.as_deref(), Some("a2V5"));
        assert_eq!(record.value.as_deref(), Some("dmFsdWU="));
        assert_eq!(record.headers[0]["ce_type"], vec![-61i8, -87]);
        assert_eq!(record.headers[1]["empty"], Vec::<i8>::new());
        assert_eq!(record.timestamp_type.as_deref(), Some("CREATE_TIME"));
        assert_eq!(record.timestamp.0.timestamp_millis(), 1_595_035_749_700);

        let mut other = record.clone();
        other.partition = 3;
        let event = kafka_event(
            [record.clone(), other, record],
            &EventSource::SelfManaged,
            "b:9092",
        );
        assert_eq!(event.records["commands-2"].len(), 2);
        assert_eq!(event.records["commands-3"].len(), 1);
        assert_eq!(event.event_source.as_deref(), Some("SelfManagedKafka"));
        // The JSON shape Lambda sends, and back.
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json["records"]["commands-2"][0]["headers"][0]["ce_type"][0],
            -61
        );
        assert_eq!(serde_json::from_value::<KafkaEvent>(json).unwrap(), event);
    }
}
