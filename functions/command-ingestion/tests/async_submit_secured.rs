//! Async submit against a broker that requires TLS and SCRAM (tansu behind
//! the TLS/SASL front of evidentsource-local-servers), with the suite's own
//! settings: a command gets through; with a wrong password the request is
//! answered 503 within seconds instead of at the producer's timeout, and the
//! answer neither shows the password nor the broker's details.

use std::time::{Duration, Instant};

use evidentsource_command_ingestion::submit::{AsyncSubmit, SubmitConfig};
use evidentsource_domain::{Limits, Transaction};
use evidentsource_kafka_config::{KafkaContext, KafkaSettings};
use evidentsource_local_servers::{SecureKafka, unique_name};
use evidentsource_proto::{
    TransactRequest,
    cloudevents::{CloudEvent, cloud_event::Data},
};

fn submit(kafka: &SecureKafka, password: &str, topic: &str) -> AsyncSubmit {
    let settings = KafkaSettings::from_lookup(kafka.kafka_vars("SCRAM-SHA-512", password)).unwrap();
    let context = KafkaContext::for_settings(&settings, None);
    let config = SubmitConfig {
        base_uri: "https://api.example.com".into(),
        topic: topic.to_owned(),
        kafka: settings,
        // Far longer than the refusal may take.
        timeout: Duration::from_secs(60),
    };
    AsyncSubmit::new(config, context).unwrap()
}

fn transaction() -> Transaction {
    let request = TransactRequest {
        database_name: unique_name("db"),
        events: vec![CloudEvent {
            id: "e-1".into(),
            source: "https://example.com/orders".into(),
            spec_version: "1.0".into(),
            r#type: "placed".into(),
            attributes: Default::default(),
            data: Some(Data::TextData("{}".into())),
        }],
        conditions: vec![],
        transaction_id: String::new(),
    };
    Transaction::from_request(request, &Limits::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submits_over_sasl_ssl() {
    let kafka = SecureKafka::shared_sasl_ssl();
    let topic = unique_name("commands");
    kafka.create_topic(&topic, 1).await.unwrap();
    let submit = submit(kafka, &kafka.password, &topic);
    let correlation_id = submit
        .submit(&transaction(), None)
        .await
        .unwrap_or_else(|r| panic!("{}: {}", r.status, r.error.message));
    assert!(!correlation_id.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_answered_503_within_seconds() {
    let kafka = SecureKafka::shared_sasl_ssl();
    let topic = unique_name("commands");
    kafka.create_topic(&topic, 1).await.unwrap();
    let password = unique_name("wrong-pa55word");
    let submit = submit(kafka, &password, &topic);
    let started = Instant::now();
    let refusal = submit.submit(&transaction(), None).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(refusal.status, 503);
    let message = &refusal.error.message;
    assert!(
        message.contains("cannot connect to its Kafka cluster"),
        "{message}"
    );
    assert!(!message.contains(&password), "{message}");
    assert!(
        !message.contains("KAFKA_SASL"),
        "configuration stays in the log: {message}"
    );
}
