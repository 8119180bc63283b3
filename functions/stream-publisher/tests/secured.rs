//! The publisher's producer against a broker that requires TLS and SCRAM
//! (tansu behind the TLS/SASL front of evidentsource-local-servers), with
//! the suite's own settings: a batch is published and read back; with a
//! wrong password the cold-start check fails naming the cause and a batch
//! is answered within seconds (every record to retry), not at the deadline.

mod common;

use std::time::{Duration, Instant};

use common::*;
use evidentsource_kafka_config::{AuthFailureKind, KafkaContext, KafkaSettings};
use evidentsource_local_servers::{SecureKafka, unique_name};
use evidentsource_stream_publisher::{Publisher, PublisherConfig};

fn publisher(kafka: &SecureKafka, password: &str, topic: &str) -> Publisher {
    let kafka = KafkaSettings::from_lookup(kafka.kafka_vars("SCRAM-SHA-512", password)).unwrap();
    let context = KafkaContext::for_settings(&kafka, None);
    let config = PublisherConfig {
        base_uri: "https://api.example.com".into(),
        topic: topic.to_owned(),
        kafka,
    };
    Publisher::new(config, context).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_over_sasl_ssl() {
    let kafka = SecureKafka::shared_sasl_ssl();
    let topic = unique_name("events");
    kafka.create_topic(&topic, 3).await.unwrap();
    let publisher = publisher(kafka, &kafka.password, &topic);
    publisher.check_connection(Duration::from_secs(10)).unwrap();

    let db = unique_name("db");
    let records = interleaved_records(&[&db], 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let response = publisher.handle(&event(&records), deadline).await.unwrap();
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let read = read_all(kafka.client_config(), &topic, 3, Duration::from_secs(5)).await;
    assert_eq!(read.len(), records.len(), "{read:?}");
    let sequences = check_sequences(&read);
    assert_eq!(sequences[&db].len(), records.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_the_cold_start_and_the_batch_within_seconds() {
    let kafka = SecureKafka::shared_sasl_ssl();
    let topic = unique_name("events");
    kafka.create_topic(&topic, 3).await.unwrap();
    let password = unique_name("wrong-pa55word");
    let publisher = publisher(kafka, &password, &topic);

    let started = Instant::now();
    let error = publisher
        .check_connection(Duration::from_secs(60))
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.kind, AuthFailureKind::Sasl);
    assert!(error.to_string().contains("KAFKA_SASL_PASSWORD"), "{error}");
    assert!(!error.to_string().contains(&password));

    // A batch with the function's deadline minutes away: answered within
    // seconds, asking Lambda to retry from the first record.
    let records = interleaved_records(&[&unique_name("db")], 1);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    let response = publisher.handle(&event(&records), deadline).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let failures: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap())
        .collect();
    assert_eq!(
        failures,
        vec![format!("{:021}", 1)],
        "retry from the first record"
    );
    assert_eq!(
        publisher
            .stats()
            .published
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
