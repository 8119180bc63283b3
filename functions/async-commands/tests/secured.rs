//! The async commands path against a broker that requires TLS and SCRAM
//! (tansu behind the TLS/SASL front of evidentsource-local-servers), with
//! the suite's own settings: a command produced to the commands topic is
//! read back by a consumer built from `client_config()` (as the local
//! runner's event source does), executed, and its response published by the
//! processor's producer; with a wrong password the cold-start check fails
//! naming the cause and a batch fails within seconds, not at the deadline.

use std::time::{Duration, Instant};

use aws_lambda_events::kafka::KafkaEvent;
use evidentsource_async_commands::{ProcessError, Processor, ProcessorConfig};
use evidentsource_commands::{CommandRequest, content_kind};
use evidentsource_kafka_config::{AuthFailureKind, KafkaContext, KafkaSettings};
use evidentsource_kafka_event_source::{EventSource, kafka_event, lambda_record};
use evidentsource_local_servers::{SecureKafka, dynamodb_client, shared, unique_name};
use evidentsource_proto::CreateDatabaseRequest;
use evidentsource_storage::{Store, StoreConfig, table::create_table};
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
    message::{Header, Headers, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};

fn settings(kafka: &SecureKafka, password: &str) -> KafkaSettings {
    KafkaSettings::from_lookup(kafka.kafka_vars("SCRAM-SHA-256", password)).unwrap()
}

async fn processor(kafka: &SecureKafka, password: &str, responses: &str) -> Processor {
    let client = dynamodb_client(&shared().dynamodb_endpoint);
    let table = unique_name("table");
    create_table(&client, &table).await.unwrap();
    let kafka = settings(kafka, password);
    let context = KafkaContext::for_settings(&kafka, None);
    let config = ProcessorConfig {
        base_uri: "https://api.example.com".into(),
        responses_topic: responses.to_owned(),
        response_ttl: Duration::from_secs(86400),
        kafka,
    };
    Processor::new(
        config,
        Store::new(client, StoreConfig::new(&table)),
        context,
    )
    .unwrap()
}

/// A consumer of partition 0 from the start, built from `client_config()`.
fn consumer(settings: &KafkaSettings, topic: &str) -> StreamConsumer<KafkaContext> {
    let consumer: StreamConsumer<KafkaContext> = settings
        .client_config()
        .set("group.id", unique_name("reader"))
        .set("enable.auto.commit", "false")
        .create_with_context(KafkaContext::for_settings(settings, None))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    consumer
}

/// A create-database command as a producer would send it.
async fn produce_command(settings: &KafkaSettings, topic: &str, correlation_id: &str) {
    let request = CommandRequest::CreateDatabase(CreateDatabaseRequest {
        database_name: unique_name("db"),
    });
    let event = request.to_event_with(
        correlation_id,
        &format!("cmd-{correlation_id}"),
        "https://producer.example.com",
        content_kind(None).unwrap(),
    );
    let message = evidentsource_cloudevents_kafka::encode(&event);
    let mut headers = OwnedHeaders::new();
    for (key, value) in &message.headers {
        headers = headers.insert(Header {
            key,
            value: Some(value),
        });
    }
    let producer: FutureProducer<KafkaContext> = settings
        .producer_config()
        .create_with_context(KafkaContext::for_settings(settings, None))
        .unwrap();
    producer
        .send(
            FutureRecord::to(topic)
                .key(correlation_id)
                .payload(&message.value)
                .headers(headers),
            Duration::from_secs(20),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("produce the command: {e}"));
}

/// Topics of their own, one command produced over SASL_SSL and read back by
/// the event source's side, handed over as Lambda does: (the event, its
/// correlation id, the responses topic, the good settings).
async fn one_command(kafka: &SecureKafka) -> (KafkaEvent, String, String, KafkaSettings) {
    let (commands, responses) = (unique_name("commands"), unique_name("responses"));
    for topic in [&commands, &responses] {
        kafka.create_topic(topic, 1).await.unwrap();
    }
    let settings = settings(kafka, &kafka.password);
    let correlation_id = unique_name("corr");
    produce_command(&settings, &commands, &correlation_id).await;
    let reader = consumer(&settings, &commands);
    let record = tokio::time::timeout(Duration::from_secs(20), reader.recv())
        .await
        .expect("the command is read back")
        .unwrap();
    let event = kafka_event(
        [lambda_record(&record)],
        &EventSource::SelfManaged,
        &kafka.brokers,
    );
    (event, correlation_id, responses, settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_in_and_responses_out_over_sasl_ssl() {
    let kafka = SecureKafka::shared_sasl_ssl();
    let (event, correlation_id, responses, settings) = one_command(kafka).await;

    let processor = processor(kafka, &kafka.password, &responses).await;
    processor.check_connection(Duration::from_secs(10)).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let report = processor.handle(&event, deadline).await.unwrap();
    assert_eq!((report.records, report.executed), (1, 1), "{report:?}");

    let reader = consumer(&settings, &responses);
    let response = tokio::time::timeout(Duration::from_secs(20), reader.recv())
        .await
        .expect("the response is read back")
        .unwrap();
    let header = response
        .headers()
        .and_then(|h| {
            h.iter()
                .find(|h| h.key == "ce_correlationid")
                .and_then(|h| h.value)
        })
        .map(|v| String::from_utf8_lossy(v).into_owned());
    assert_eq!(header.as_deref(), Some(correlation_id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_the_cold_start_and_the_batch_within_seconds() {
    let kafka = SecureKafka::shared_sasl_ssl();
    let (event, _, responses, _) = one_command(kafka).await;

    let password = unique_name("wrong-pa55word");
    let processor = processor(kafka, &password, &responses).await;
    let started = Instant::now();
    let error = processor
        .check_connection(Duration::from_secs(60))
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.kind, AuthFailureKind::Sasl);
    assert!(error.to_string().contains("KAFKA_SASL_PASSWORD"), "{error}");

    // The command is executed (its response recorded in DynamoDB), but the
    // response cannot be published: the batch fails within seconds, with
    // the function's deadline minutes away, so the event source retries.
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    let error = processor.handle(&event, deadline).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(error, ProcessError::Refused { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("SASL authentication failed"), "{message}");
    assert!(!message.contains(&password), "{message}");
}
