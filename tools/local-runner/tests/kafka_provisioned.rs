//! The runner's Kafka source in provisioned mode, against tansu and moto's
//! SQS: a record the function keeps failing on is isolated by halving the
//! batch, retried `MaximumRetryAttempts` times, recorded in the on-failure
//! queue and passed, so the records after it are handled; a record older
//! than `MaximumRecordAgeInSeconds` goes to the queue without an
//! invocation. (On demand, a failing batch is retried whole until it
//! succeeds: `event_sources.rs`.)

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

mod common;

use aws_lambda_events::kafka::KafkaEvent;
use base64::Engine;
use common::kafka::*;
use evidentsource_kafka_event_source::EventSource;
use evidentsource_local_runner::{
    Shutdown,
    batcher::BatchSettings,
    kafka_failure::{FailureQueue, Origin},
    kafka_poller::{KafkaSource, KafkaTotals},
    template::{KafkaErrorHandling, KafkaSettings},
};
use evidentsource_local_servers::{create_topic, local_aws, shared, unique_name};
use rdkafka::Offset;
use serde_json::Value;

/// The record values of each invocation, in offset order.
type Seen = Arc<Mutex<Vec<Vec<String>>>>;

fn values(event: &KafkaEvent) -> Vec<String> {
    let mut records: Vec<_> = event.records.values().flatten().collect();
    records.sort_by_key(|r| (r.partition, r.offset));
    records
        .iter()
        .map(|r| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(r.value.as_deref().unwrap_or_default())
                .unwrap();
            String::from_utf8(bytes).unwrap()
        })
        .collect()
}

async fn queue() -> (aws_sdk_sqs::Client, String) {
    let client = aws_sdk_sqs::Client::new(&local_aws(&shared().dynamodb_endpoint));
    let url = client
        .create_queue()
        .queue_name(unique_name("async-failures"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    (client, url)
}

async fn received(client: &aws_sdk_sqs::Client, url: &str) -> Vec<Value> {
    let out = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    out.messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect()
}

/// A provisioned source on `topic` (batches of `batch_size`, one retry,
/// bisecting), whose function fails any batch holding "poison"; runs until
/// `done` holds for the invocations seen.
async fn run_provisioned(
    topic: &str,
    batch_size: usize,
    max_record_age: Option<Duration>,
    (client, url): (aws_sdk_sqs::Client, String),
    done: impl Fn(&[Vec<String>]) -> bool,
) -> (
    KafkaTotals,
    Vec<Vec<String>>,
    Arc<rdkafka::consumer::StreamConsumer>,
) {
    let consumer = consumer(&unique_name("provisioned-group"), topic);
    let source = KafkaSource {
        consumer: consumer.clone(),
        settings: KafkaSettings {
            batch_size,
            window: Duration::from_secs(10),
            provisioned: Some(KafkaErrorHandling {
                retries: BatchSettings {
                    batch_size,
                    max_retries: 1,
                    bisect_on_error: true,
                },
                max_record_age,
                on_failure: Some("AsyncCommandsFailureQueue".into()),
            }),
        },
        source: EventSource::SelfManaged,
        bootstrap_servers: shared().kafka_brokers.clone(),
        on_failure: Some(FailureQueue {
            client,
            url,
            origin: Origin {
                function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
                event_source_arn: None,
                bootstrap_servers: shared().kafka_brokers.clone(),
            },
        }),
    };
    let seen: Seen = Arc::default();
    let (stop, shutdown) = Shutdown::new();
    let calls = seen.clone();
    let run = tokio::spawn(async move {
        source
            .run(
                move |event: KafkaEvent| {
                    let calls = calls.clone();
                    async move {
                        let values = values(&event);
                        let poisoned = values.iter().any(|v| v == "poison");
                        calls.lock().unwrap().push(values);
                        if poisoned { Err("poison") } else { Ok(()) }
                    }
                },
                shutdown,
            )
            .await
    });
    within_40s(
        || done(&seen.lock().unwrap()),
        || format!("{:?}", seen.lock().unwrap()),
    )
    .await;
    stop.send(true).unwrap();
    let totals = run.await.unwrap();
    let seen = seen.lock().unwrap().clone();
    (totals, seen, consumer)
}

#[tokio::test]
async fn a_failing_record_is_isolated_retried_recorded_and_passed() {
    let topic = unique_name("provisioned-commands");
    create_topic(&shared().kafka_brokers, &topic, 2)
        .await
        .unwrap();
    produce(
        &topic,
        &[(0, "a"), (0, "b"), (0, "poison"), (0, "d"), (0, "e")],
    )
    .await;
    let (client, url) = queue().await;
    let (totals, seen, consumer) =
        run_provisioned(&topic, 5, None, (client.clone(), url.clone()), |seen| {
            seen.last().is_some_and(|v| v.iter().any(|s| s == "e"))
                && !seen.last().unwrap().contains(&"poison".to_owned())
        })
        .await;
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        seen,
        vec![
            s(&["a", "b", "poison", "d", "e"]),
            // Halved: the first half succeeds.
            s(&["a", "b"]),
            // The rest, halved to the failing record alone.
            s(&["poison", "d", "e"]),
            // Its try and its one retry.
            s(&["poison"]),
            s(&["poison"]),
            // Given up: the source moves on.
            s(&["d", "e"]),
        ]
    );
    assert_eq!(
        (
            totals.records,
            totals.failures,
            totals.bisections,
            totals.given_up
        ),
        (4, 4, 2, 1),
        "{totals:?}"
    );
    assert_eq!(
        committed(&consumer, &topic),
        vec![Offset::Offset(5), Offset::Invalid]
    );

    let messages = received(&client, &url).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(m["requestContext"]["condition"], "RetryAttemptsExhausted");
    // [poison, d, e], [poison] and its retry.
    assert_eq!(m["requestContext"]["approximateInvokeCount"], 3);
    let info = &m["KafkaBatchInfo"]["recordsInfo"][format!("{topic}-0")];
    assert_eq!(info["firstRecordOffset"], "2", "{m}");
}

#[tokio::test]
async fn a_record_too_old_goes_to_the_queue_without_an_invocation() {
    let topic = unique_name("provisioned-old");
    create_topic(&shared().kafka_brokers, &topic, 2)
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    produce_at(&topic, &[(0, "old", now - 120_000), (0, "new", now)]).await;
    let (client, url) = queue().await;
    let (totals, seen, consumer) = run_provisioned(
        &topic,
        2,
        Some(Duration::from_secs(60)),
        (client.clone(), url.clone()),
        |seen| !seen.is_empty(),
    )
    .await;
    assert_eq!(seen, vec![vec!["new".to_owned()]]);
    assert_eq!((totals.records, totals.given_up), (1, 1), "{totals:?}");
    assert_eq!(
        committed(&consumer, &topic),
        vec![Offset::Offset(2), Offset::Invalid]
    );
    let messages = received(&client, &url).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(
        messages[0]["requestContext"]["condition"],
        "RecordAgeExceeded"
    );
    assert_eq!(messages[0]["requestContext"]["approximateInvokeCount"], 0);
    assert!(messages[0]["responseContext"].is_null());
    let info = &messages[0]["KafkaBatchInfo"]["recordsInfo"][format!("{topic}-0")];
    assert_eq!(info["firstRecordOffset"], "0");
}
