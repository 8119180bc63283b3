//! The whole path on real servers: commits through the storage layer in
//! moto, the table's stream read back with aws-sdk-dynamodbstreams and handed
//! to the handler in Lambda-shaped batches, the topic read back from tansu.

mod common;

use std::{collections::HashMap, time::Duration};

use aws_lambda_events::event::dynamodb::{Event as DynamoDbEvent, EventRecord};
use aws_sdk_dynamodbstreams::config::{BehaviorVersion, Credentials, Region};
use common::*;
use evidentsource_cloudevents_kafka::decode;
use evidentsource_database_events::{ReceivedBody, ReceivedDatabaseEvent};
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

fn transaction(db: &DatabaseName, n: usize, tag: &str) -> Transaction {
    let events = (0..n)
        .map(|i| CloudEvent {
            id: format!("{tag}-{i}"),
            source: "https://example.com/orders".into(),
            spec_version: "1.0".into(),
            r#type: "placed".into(),
            attributes: Default::default(),
            data: Some(Data::TextData(format!("{{\"i\":{i}}}"))),
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

/// A publisher to `topic` on the local broker.
fn publisher_to(brokers: &str, topic: &str) -> Publisher {
    let kafka =
        KafkaSettings::from_lookup(|k| (k == "KAFKA_BROKERS").then(|| brokers.to_owned())).unwrap();
    let config = PublisherConfig {
        base_uri: "https://api.example.com".into(),
        topic: topic.to_owned(),
        kafka,
    };
    Publisher::new(config, KafkaContext::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_reach_the_topic_in_order() {
    let servers = shared();
    wait_for_kafka(&servers.kafka_brokers, Duration::from_secs(30)).unwrap();
    let client = dynamodb_client(&servers.dynamodb_endpoint);
    let table = unique_name("table");
    let stream_arn = create_table(&client, &table).await.unwrap();
    let store = Store::new(client, StoreConfig::new(&table));

    let alpha = DatabaseName::parse(unique_name("alpha")).unwrap();
    let bravo = DatabaseName::parse(unique_name("bravo")).unwrap();
    let mut committed: HashMap<String, Vec<(u64, u64, String)>> = HashMap::new();
    let mut record = |db: &DatabaseName, s: evidentsource_proto::BatchSummary| {
        committed
            .entry(db.to_string())
            .or_default()
            .push((s.basis, s.revision, s.id));
    };
    store.create_database(&alpha).await.unwrap();
    store.create_database(&bravo).await.unwrap();
    for round in 0..4 {
        record(
            &alpha,
            store
                .transact(&transaction(&alpha, 1 + round, &format!("a{round}")))
                .await
                .unwrap(),
        );
        record(
            &bravo,
            store
                .transact(&transaction(&bravo, 2, &format!("b{round}")))
                .await
                .unwrap(),
        );
    }
    store.delete_database(&alpha).await.unwrap();
    store.create_database(&alpha).await.unwrap();
    record(
        &alpha,
        store
            .transact(&transaction(&alpha, 3, "again"))
            .await
            .unwrap(),
    );

    // The stream, as Lambda would read it.
    let streams_config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&servers.dynamodb_endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "test"))
        .build();
    let mut reader = StreamReader::open(
        aws_sdk_dynamodbstreams::Client::from_conf(streams_config),
        &stream_arn,
        "us-east-1",
    )
    .await
    .unwrap();
    let mut records: Vec<EventRecord> = Vec::new();
    loop {
        let page = reader.poll(100).await.unwrap();
        if page.is_empty() {
            break;
        }
        records.extend(page);
    }
    assert!(
        records.len() > 14,
        "head records and chunk records: {}",
        records.len()
    );

    let topic = unique_name("database-events");
    create_topic(&servers.kafka_brokers, &topic, 3)
        .await
        .unwrap();
    let publisher = publisher_to(&servers.kafka_brokers, &topic);

    // Lambda-shaped batches of 5; a reported failure would be retried from there.
    let mut from = 0;
    while from < records.len() {
        let to = (from + 5).min(records.len());
        let mut batch = DynamoDbEvent::default();
        batch.records = records[from..to].to_vec();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let response = publisher.handle(&batch, deadline).await.unwrap();
        assert!(
            response.batch_item_failures.is_empty(),
            "tansu accepts everything"
        );
        from = to;
    }

    let messages = read_all(
        kafka_config(&servers.kafka_brokers),
        &topic,
        3,
        Duration::from_secs(3),
    )
    .await;
    let sequences = check_sequences(&messages);
    let mut expected_alpha = vec!["created".to_string()];
    expected_alpha.extend(std::iter::repeat_n("transacted".to_string(), 4));
    expected_alpha.extend([
        "deleted".to_string(),
        "created".to_string(),
        "transacted".to_string(),
    ]);
    assert_eq!(sequences[alpha.as_str()], expected_alpha);
    let mut expected_bravo = vec!["created".to_string()];
    expected_bravo.extend(std::iter::repeat_n("transacted".to_string(), 4));
    assert_eq!(sequences[bravo.as_str()], expected_bravo);

    // Bodies decode to the committed values.
    let mut published: HashMap<String, Vec<(u64, u64, String)>> = HashMap::new();
    for m in &messages {
        let event = decode(
            m.headers
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_slice()))),
            Some(&m.value),
        )
        .unwrap();
        let received = ReceivedDatabaseEvent::parse(Some(&m.key), &event).unwrap();
        assert!(received.id.len() == 36);
        if let ReceivedBody::Transacted(b) = received.body {
            published
                .entry(b.database.clone())
                .or_default()
                .push((b.basis, b.revision, b.id));
        }
    }
    assert_eq!(published, committed);
}

/// `events/dynamodb-stream-head-records.json` through the handler to tansu:
/// three events published, two records skipped, one poison record skipped.
#[tokio::test]
async fn sample_event_runs_through_the_handler() {
    use std::sync::atomic::Ordering::Relaxed;
    let servers = shared();
    wait_for_kafka(&servers.kafka_brokers, Duration::from_secs(30)).unwrap();
    let topic = unique_name("database-events");
    create_topic(&servers.kafka_brokers, &topic, 3)
        .await
        .unwrap();
    let publisher = publisher_to(&servers.kafka_brokers, &topic);

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/dynamodb-stream-head-records.json");
    let sample: DynamoDbEvent =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let response = publisher
        .handle(
            &sample,
            tokio::time::Instant::now() + Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    let stats = publisher.stats();
    assert_eq!(
        (
            stats.published.load(Relaxed),
            stats.skipped.load(Relaxed),
            stats.poison.load(Relaxed)
        ),
        (3, 2, 1)
    );
    let messages = read_all(
        kafka_config(&servers.kafka_brokers),
        &topic,
        3,
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(
        check_sequences(&messages)["accounts"],
        ["created", "transacted", "deleted"]
    );
}
