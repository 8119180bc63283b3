//! Created, Transacted and Deleted database events (docs/contract.md §2) go through
//! the real tansu broker with rdkafka and come back byte-identical.

use std::time::Duration;

use evidentsource_cloudevents_kafka::decode_message;
use evidentsource_database_events::{DatabaseEvent, ReceivedBody, ReceivedDatabaseEvent};
use evidentsource_local_servers::{
    create_topic, kafka_config, shared, unique_name, wait_for_kafka,
};
use evidentsource_proto::{BatchSummary, Database, Timestamp};
use rdkafka::{
    Message, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
    message::Headers,
    producer::{FutureProducer, FutureRecord},
};

fn ts(seconds: i64, millis: i32) -> Timestamp {
    Timestamp {
        seconds,
        nanos: millis * 1_000_000,
    }
}

#[tokio::test]
async fn database_events_round_trip_through_tansu() {
    let brokers = &shared().kafka_brokers;
    wait_for_kafka(brokers, Duration::from_secs(30)).unwrap();
    let topic = unique_name("database-events");
    create_topic(brokers, &topic, 3).await.unwrap();

    let database = unique_name("db");
    let created_at = ts(1_705_314_600, 123);
    let events = [
        DatabaseEvent::Created(Database {
            name: database.clone(),
            created_at: Some(created_at),
            basis: 0,
            revision: 0,
            revision_timestamp: Some(created_at),
        }),
        DatabaseEvent::Transacted(BatchSummary {
            id: "7f3e8a1c-9876-5432-1fed-cba987654321".into(),
            database: database.clone(),
            basis: 0,
            revision: 3,
            event_count: 3,
            recorded_time: Some(ts(1_705_314_605, 456)),
        }),
        DatabaseEvent::Deleted {
            database: database.clone(),
            created_at,
            deleted_at: ts(1_705_316_400, 789),
        },
    ];
    let encoded: Vec<_> = events
        .iter()
        .map(|e| e.encode("https://api.example.com"))
        .collect();

    let producer: FutureProducer = kafka_config(brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    let mut partitions = Vec::new();
    for e in &encoded {
        let record = FutureRecord::to(&topic)
            .key(&e.key)
            .payload(&e.message.value)
            .headers(e.message.owned_headers());
        let delivery = producer
            .send(record, Duration::from_secs(30))
            .await
            .unwrap();
        partitions.push(delivery.partition);
    }
    assert!(
        partitions.iter().all(|p| *p == partitions[0]),
        "one key, one partition: {partitions:?}"
    );

    let consumer: StreamConsumer = kafka_config(brokers)
        .set("group.id", unique_name("test"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&topic, partitions[0], rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();

    for (sent, event) in encoded.iter().zip(&events) {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("a message within 30 s")
            .unwrap();
        assert_eq!(message.key(), Some(sent.key.as_bytes()));
        assert_eq!(
            message.payload().unwrap_or_default(),
            sent.message.value.as_slice()
        );
        let headers: Vec<(String, Vec<u8>)> = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            headers, sent.message.headers,
            "headers come back identical, in order"
        );

        let decoded = decode_message(&message).unwrap();
        let received = ReceivedDatabaseEvent::parse(message.key(), &decoded).unwrap();
        assert_eq!(received.id, event.id().to_string());
        match (event, &received.body) {
            (DatabaseEvent::Created(a), ReceivedBody::Created(b)) => assert_eq!(a, b),
            (DatabaseEvent::Transacted(a), ReceivedBody::Transacted(b)) => assert_eq!(a, b),
            (DatabaseEvent::Deleted { .. }, ReceivedBody::Deleted) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
