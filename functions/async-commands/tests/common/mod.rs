#![allow(dead_code)]

use std::{collections::HashMap, time::Duration};

use aws_lambda_events::kafka::{KafkaEvent, KafkaRecord};
use evidentsource_async_commands::{Processor, ProcessorConfig};
use evidentsource_cloudevents_kafka::decode;
use evidentsource_commands::{CommandRequest, ReceivedResponse};
use evidentsource_kafka_config::{KafkaContext, KafkaSettings};
use evidentsource_kafka_event_source::{EventSource, kafka_event, lambda_record};
use evidentsource_local_servers::{
    create_topic, dynamodb_client, kafka_config, shared, unique_name, wait_for_kafka,
};
use evidentsource_storage::{Store, StoreConfig, table::create_table};
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
    message::{Header, Headers, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};

pub const PARTITIONS: i32 = 3;

/// A table, a commands topic and a responses topic of their own.
pub struct Setup {
    pub brokers: String,
    pub commands: String,
    pub responses: String,
    pub table: String,
    pub dynamodb_endpoint: String,
}

impl Setup {
    pub async fn new() -> Setup {
        let servers = shared();
        wait_for_kafka(&servers.kafka_brokers, Duration::from_secs(30)).unwrap();
        let client = dynamodb_client(&servers.dynamodb_endpoint);
        let table = unique_name("table");
        create_table(&client, &table).await.unwrap();
        let commands = unique_name("commands");
        let responses = unique_name("responses");
        for topic in [&commands, &responses] {
            create_topic(&servers.kafka_brokers, topic, PARTITIONS)
                .await
                .unwrap();
        }
        Setup {
            brokers: servers.kafka_brokers.clone(),
            commands,
            responses,
            table,
            dynamodb_endpoint: servers.dynamodb_endpoint.clone(),
        }
    }

    pub fn store(&self) -> Store {
        Store::new(
            dynamodb_client(&self.dynamodb_endpoint),
            StoreConfig::new(&self.table),
        )
    }

    pub fn config(&self, brokers: &str) -> ProcessorConfig {
        let kafka = KafkaSettings::from_lookup(|k| match k {
            "KAFKA_BROKERS" => Some(brokers.to_owned()),
            _ => None,
        })
        .unwrap();
        ProcessorConfig {
            base_uri: "https://api.example.com".into(),
            responses_topic: self.responses.clone(),
            response_ttl: Duration::from_secs(86400),
            kafka,
        }
    }

    /// The HTTP function, with async submit to this setup's commands topic.
    pub fn http_app(&self) -> evidentsource_command_ingestion::App {
        use evidentsource_command_ingestion::submit::{AsyncSubmit, SubmitConfig};
        let kafka =
            KafkaSettings::from_lookup(|k| (k == "KAFKA_BROKERS").then(|| self.brokers.clone()))
                .unwrap();
        let submit = AsyncSubmit::new(
            SubmitConfig {
                base_uri: "https://api.example.com".into(),
                topic: self.commands.clone(),
                kafka,
                timeout: Duration::from_secs(10),
            },
            KafkaContext::default(),
        )
        .unwrap();
        evidentsource_command_ingestion::App::new(self.store()).with_async_submit(submit)
    }

    pub fn processor(&self) -> Processor {
        Processor::new(
            self.config(&self.brokers),
            self.store(),
            KafkaContext::default(),
        )
        .unwrap()
    }
}

/// A raw command message: key, headers (name, value or null), value.
#[derive(Debug, Clone, Default)]
pub struct Raw {
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub value: Option<Vec<u8>>,
    /// Produce to this partition (default: by key).
    pub partition: Option<i32>,
}

impl Raw {
    /// A well-formed command message for `request`.
    pub fn command(correlation_id: &str, request: &CommandRequest, json: bool) -> Raw {
        use evidentsource_commands::content_kind;
        let kind = if json {
            content_kind(Some("application/json")).unwrap()
        } else {
            content_kind(None).unwrap()
        };
        let event = request.to_event_with(
            correlation_id,
            &format!("cmd-{correlation_id}"),
            "https://producer.example.com",
            kind,
        );
        let message = evidentsource_cloudevents_kafka::encode(&event);
        Raw {
            key: Some(correlation_id.as_bytes().to_vec()),
            headers: message
                .headers
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect(),
            value: Some(message.value),
            partition: None,
        }
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    pub fn set_header(mut self, name: &str, value: Option<&[u8]>) -> Raw {
        self.headers.retain(|(k, _)| k != name);
        self.headers
            .push((name.to_owned(), value.map(<[u8]>::to_vec)));
        self
    }

    pub fn without_header(mut self, name: &str) -> Raw {
        self.headers.retain(|(k, _)| k != name);
        self
    }

    pub fn on(mut self, partition: i32) -> Raw {
        self.partition = Some(partition);
        self
    }
}

/// Produces the messages in order; returns each one's (partition, offset).
pub async fn produce(brokers: &str, topic: &str, messages: &[Raw]) -> Vec<(i32, i64)> {
    let producer: FutureProducer = kafka_config(brokers).create().unwrap();
    let mut placed = Vec::new();
    for m in messages {
        let mut headers = OwnedHeaders::new();
        for (k, v) in &m.headers {
            headers = headers.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
        if let Some(key) = &m.key {
            record = record.key(key.as_slice());
        }
        if let Some(value) = &m.value {
            record = record.payload(value.as_slice());
        }
        if let Some(p) = m.partition {
            record = record.partition(p);
        }
        let delivery = producer
            .send(record, Duration::from_secs(10))
            .await
            .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
        placed.push((delivery.partition, delivery.offset));
    }
    placed
}

fn consumer_from_start(brokers: &str, topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = kafka_config(brokers)
        .set("group.id", unique_name("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    consumer
}

/// Reads `count` records of the topic as Lambda records (offset order per
/// partition).
pub async fn read_records(brokers: &str, topic: &str, count: usize) -> Vec<KafkaRecord> {
    let consumer = consumer_from_start(brokers, topic);
    let mut records = Vec::new();
    while records.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(20), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} records on {topic}", records.len()))
            .unwrap();
        records.push(lambda_record(&message));
    }
    records
}

/// Checks that the topic holds exactly `count` records.
pub async fn assert_no_more_records(brokers: &str, topic: &str, count: usize) {
    let consumer = consumer_from_start(brokers, topic);
    let mut seen = 0;
    loop {
        let wait = if seen < count {
            Duration::from_secs(20)
        } else {
            Duration::from_millis(1500)
        };
        match tokio::time::timeout(wait, consumer.recv()).await {
            Ok(m) => {
                m.unwrap();
                seen += 1;
                assert!(seen <= count, "{topic} holds more than {count} records");
            }
            Err(_) => break,
        }
    }
    assert_eq!(seen, count, "{topic}");
}

/// The Lambda event Lambda's self-managed Kafka event source would send.
pub fn lambda_event(records: Vec<KafkaRecord>, brokers: &str) -> KafkaEvent {
    kafka_event(records, &EventSource::SelfManaged, brokers)
}

pub type RawParts<'a> = (&'a [u8], &'a [(String, Vec<u8>)], &'a [u8]);

/// A message on the responses topic, raw and parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub key: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub value: Vec<u8>,
    pub parsed: ReceivedResponse,
}

impl Response {
    /// Key, headers and value: what byte-identical compares.
    pub fn raw(&self) -> RawParts<'_> {
        (&self.key, &self.headers, &self.value)
    }
}

/// Reads exactly `count` responses (and checks that no more arrive soon).
pub async fn read_responses(brokers: &str, topic: &str, count: usize) -> Vec<Response> {
    let consumer = consumer_from_start(brokers, topic);
    let mut responses = Vec::new();
    loop {
        let wait = if responses.len() < count {
            Duration::from_secs(20)
        } else {
            Duration::from_millis(1500)
        };
        let message = match tokio::time::timeout(wait, consumer.recv()).await {
            Ok(m) => m.unwrap(),
            Err(_) if responses.len() >= count => break,
            Err(_) => panic!("only {} of {count} responses", responses.len()),
        };
        let headers: Vec<(String, Vec<u8>)> = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        let event = decode(
            headers
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_slice()))),
            message.payload(),
        )
        .unwrap();
        let parsed = ReceivedResponse::parse(message.key(), &event)
            .unwrap_or_else(|e| panic!("response breaks the contract: {e}"));
        responses.push(Response {
            key: message.key().unwrap_or_default().to_vec(),
            headers,
            value: message.payload().unwrap_or_default().to_vec(),
            parsed,
        });
    }
    assert_eq!(responses.len(), count, "more responses than expected");
    responses
}

/// Responses by correlation id.
pub fn by_correlation(responses: &[Response]) -> HashMap<String, Vec<&Response>> {
    let mut map: HashMap<String, Vec<&Response>> = HashMap::new();
    for r in responses {
        map.entry(r.parsed.correlation_id.clone())
            .or_default()
            .push(r);
    }
    map
}
