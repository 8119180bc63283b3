//! A head record that can never be published goes to the dead-letter queue
//! (moto's SQS) and the records around it are published; when the queue
//! cannot take it, the record is reported as failed instead of skipped.

mod common;

use std::time::Duration;

use common::*;
use evidentsource_kafka_config::{KafkaContext, KafkaSettings};
use evidentsource_local_servers::{create_topic, kafka_config, local_aws, shared, unique_name};
use evidentsource_stream_publisher::{DeadLetter, DeadLetterQueue, Publisher, PublisherConfig};
use serde_json::json;
use tokio::time::Instant;

fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&local_aws(&shared().dynamodb_endpoint))
}

async fn publisher(topic: &str, queue_url: &str) -> Publisher {
    let brokers = shared().kafka_brokers.clone();
    create_topic(&brokers, topic, 3).await.unwrap();
    let kafka =
        KafkaSettings::from_lookup(|k| (k == "KAFKA_BROKERS").then(|| brokers.clone())).unwrap();
    let config = PublisherConfig {
        base_uri: "https://api.example.com".into(),
        topic: topic.to_owned(),
        kafka,
    };
    Publisher::new(config, KafkaContext::default())
        .unwrap()
        .with_dead_letters(Some(DeadLetterQueue::new(sqs(), queue_url)))
}

/// `db` Created, a poison head of `broken` (its revision is not a number),
/// `db` Transacted.
fn records(db: &str, broken: &str) -> Vec<serde_json::Value> {
    let t0 = 1_705_314_600_000;
    let mut poison = head_record(2, broken, "active", t0, 0, 2, t0 + 5);
    poison["dynamodb"]["NewImage"]["revision"] = json!({"S": "two"});
    vec![
        head_record(1, db, "active", t0, 0, 0, t0),
        poison,
        head_record(3, db, "active", t0, 0, 2, t0 + 10),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_goes_to_the_queue_and_the_rest_is_published() {
    let queue = sqs()
        .create_queue()
        .queue_name(unique_name("dlq"))
        .send()
        .await
        .unwrap();
    let queue_url = queue.queue_url().unwrap();
    let topic = unique_name("database-events");
    let publisher = publisher(&topic, queue_url).await;
    let (db, broken) = (unique_name("db"), unique_name("broken"));

    let response = publisher
        .handle(
            &event(&records(&db, &broken)),
            Instant::now() + Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let letters = sqs()
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let bodies: Vec<serde_json::Value> = letters
        .messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let letter = &bodies[0];
    assert_eq!(letter["kind"], DeadLetter::KIND);
    assert_eq!(letter["sequenceNumber"], format!("{:021}", 2));
    assert_eq!(letter["database"], broken.as_str());
    assert_eq!(letter["eventId"], "e2");
    assert_eq!(
        letter["streamArn"],
        "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x"
    );
    assert!(
        letter["reason"].as_str().unwrap().contains("revision"),
        "{letter}"
    );

    let read = read_all(
        kafka_config(&shared().kafka_brokers),
        &topic,
        3,
        Duration::from_secs(3),
    )
    .await;
    let sequences = check_sequences(&read);
    assert_eq!(sequences[&db], ["created", "transacted"]);
    assert!(!sequences.contains_key(&broken), "{sequences:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_the_queue_cannot_take_is_reported_failed() {
    let missing = format!(
        "{}/123456789012/{}",
        shared().dynamodb_endpoint,
        unique_name("no-such-queue")
    );
    let publisher = publisher(&unique_name("database-events"), &missing).await;
    let response = publisher
        .handle(
            &event(&records(&unique_name("db"), &unique_name("broken"))),
            Instant::now() + Duration::from_secs(30),
        )
        .await
        .unwrap();
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap())
        .collect();
    assert_eq!(failed, [format!("{:021}", 2)]);
}
