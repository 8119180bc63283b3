//! What the republish and dead-letter tests share: a table in moto with
//! databases committed through the storage layer, the publisher run over
//! its stream, a topic read back from tansu.
#![allow(dead_code)]

use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_sdk_dynamodbstreams::config::{BehaviorVersion, Credentials, Region};
use evidentsource_admin::republish::Republisher;
use evidentsource_domain::{DatabaseName, Limits, Transaction};
use evidentsource_dynamodb_stream::StreamReader;
use evidentsource_kafka_config::{KafkaContext, KafkaSettings};
use evidentsource_local_servers::{
    create_topic, dynamodb_client, kafka_config, shared, unique_name, wait_for_kafka,
};
use evidentsource_proto::{
    TransactRequest,
    cloudevents::{CloudEvent, cloud_event::Data},
};
use evidentsource_storage::{Store, StoreConfig, table::create_table};
use evidentsource_stream_publisher::{Publisher, PublisherConfig};
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
    message::Headers,
};

pub const BASE_URI: &str = "https://api.example.com";
pub const PARTITIONS: i32 = 3;

/// A fresh table in moto, its stream's ARN and a store over it.
pub async fn table() -> (Store, String) {
    let servers = shared();
    wait_for_kafka(&servers.kafka_brokers, Duration::from_secs(30)).unwrap();
    let client = dynamodb_client(&servers.dynamodb_endpoint);
    let table = unique_name("table");
    let stream_arn = create_table(&client, &table).await.unwrap();
    (Store::new(client, StoreConfig::new(&table)), stream_arn)
}

/// `n` events of `size` bytes of data each.
pub fn transaction(db: &DatabaseName, n: usize, size: usize, tag: &str) -> Transaction {
    let events = (0..n)
        .map(|i| CloudEvent {
            id: format!("{tag}-{i}"),
            source: "https://example.com/orders".into(),
            spec_version: "1.0".into(),
            r#type: "placed".into(),
            attributes: Default::default(),
            // Incompressible enough that large events take several chunks.
            data: Some(Data::BinaryData(
                (0..size)
                    .map(|j| (j as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ i as u8)
                    .collect(),
            )),
        })
        .collect();
    let request = TransactRequest {
        database_name: db.to_string(),
        events,
        conditions: vec![],
        transaction_id: String::new(),
    };
    Transaction::from_request(request, &Limits::default()).unwrap()
}

pub fn config(topic: &str) -> PublisherConfig {
    let brokers = shared().kafka_brokers.clone();
    PublisherConfig {
        base_uri: BASE_URI.into(),
        topic: topic.to_owned(),
        kafka: KafkaSettings::from_lookup(|k| (k == "KAFKA_BROKERS").then(|| brokers.clone()))
            .unwrap(),
    }
}

/// A new topic on the local broker.
pub async fn topic(prefix: &str) -> String {
    let topic = unique_name(prefix);
    create_topic(&shared().kafka_brokers, &topic, PARTITIONS)
        .await
        .unwrap();
    topic
}

pub fn republisher(store: &Store, topic: &str) -> Republisher {
    let r = Republisher::new(store.clone(), config(topic), KafkaContext::default())
        .unwrap()
        .with_timeout(Duration::from_secs(30));
    r.check_connection().unwrap();
    r
}

/// The publisher run over the whole stream of the table, in Lambda-shaped
/// batches, to `topic`.
pub async fn publish_stream(stream_arn: &str, topic: &str) {
    let streams_config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&shared().dynamodb_endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "test"))
        .build();
    let mut reader = StreamReader::open(
        aws_sdk_dynamodbstreams::Client::from_conf(streams_config),
        stream_arn,
        "us-east-1",
    )
    .await
    .unwrap();
    let publisher = Publisher::new(config(topic), KafkaContext::default()).unwrap();
    loop {
        let page = reader.poll(100).await.unwrap();
        if page.is_empty() {
            break;
        }
        let mut batch = DynamoDbEvent::default();
        batch.records = page;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let response = publisher.handle(&batch, deadline).await.unwrap();
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
}

/// A message as read back: key, headers, value (the partition is the
/// key's: one database, one partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub key: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub value: Vec<u8>,
}

impl Read {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }
}

/// Every message of `topic`, from the beginning, until none arrives for
/// three seconds; in partition order per partition.
pub async fn read_all(topic: &str) -> Vec<Read> {
    let consumer: StreamConsumer = kafka_config(&shared().kafka_brokers)
        .set("group.id", "reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(3), consumer.recv()).await {
        out.push(Read {
            key: String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap(),
            headers: m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default(),
            value: m.payload().unwrap_or_default().to_vec(),
        });
    }
    out
}

/// A database's messages, in order.
pub fn of(messages: &[Read], db: &str) -> Vec<Read> {
    messages.iter().filter(|m| m.key == db).cloned().collect()
}

/// What a consumer that de-duplicates on `ce_id` keeps of a database's
/// messages: the first copy of each, in order.
pub fn deduplicated(messages: &[Read], db: &str) -> Vec<Read> {
    let mut seen = std::collections::HashSet::new();
    of(messages, db)
        .into_iter()
        .filter(|m| seen.insert(m.header("ce_id")))
        .collect()
}
