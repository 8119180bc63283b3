//! Produce errors injected mid-batch with rdkafka's MockCluster: the
//! response names the earliest failed record, and after Lambda-style retries
//! the topic holds every event, in order per database, with duplicates only
//! byte-identical.

mod common;

use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use common::*;
use evidentsource_kafka_config::{KafkaContext, KafkaSettings};
use evidentsource_stream_publisher::{BatchMetrics, Publisher, PublisherConfig};
use rdkafka::{
    mocking::MockCluster,
    types::{RDKafkaApiKey, RDKafkaRespErr},
};

const TOPIC: &str = "database-events";

fn publisher(brokers: &str) -> Publisher {
    let kafka =
        KafkaSettings::from_lookup(|k| (k == "KAFKA_BROKERS").then(|| brokers.to_owned())).unwrap();
    let config = PublisherConfig {
        base_uri: "https://api.example.com".into(),
        topic: TOPIC.into(),
        kafka,
    };
    Publisher::new(config, KafkaContext::default()).unwrap()
}

/// Runs the batch as Lambda would: on a reported failure, again from the
/// failed record. Returns the failure positions reported; adds the
/// invocations' metrics to `totals`.
async fn run_like_lambda(
    publisher: &Publisher,
    records: &[serde_json::Value],
    totals: &mut BatchMetrics,
) -> Vec<usize> {
    let mut from = 0;
    let mut reported = Vec::new();
    for attempt in 0..20 {
        let batch: DynamoDbEvent = event(&records[from..]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut metrics = BatchMetrics::default();
        let response = publisher
            .handle_measured(&batch, deadline, &mut metrics)
            .await
            .unwrap();
        totals.published += metrics.published;
        totals.resent += metrics.resent;
        totals.failed_transient += metrics.failed_transient;
        totals.failed_permanent += metrics.failed_permanent;
        let Some(failure) = response.batch_item_failures.first() else {
            return reported;
        };
        let seq = failure.item_identifier.clone().unwrap();
        let position = records
            .iter()
            .position(|r| r["dynamodb"]["SequenceNumber"] == seq.as_str())
            .unwrap();
        assert!(
            position >= from,
            "attempt {attempt}: the failure is inside the batch"
        );
        reported.push(position);
        from = position;
    }
    panic!("no success after 20 attempts: {reported:?}");
}

/// The failures reported, the messages on the topic, the metrics of the
/// run with errors.
async fn scenario(errors: &[RDKafkaRespErr], label: &str) -> (Vec<usize>, usize, BatchMetrics) {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic(TOPIC, 3, 1).unwrap();
    let brokers = mock.bootstrap_servers();
    let publisher = publisher(&brokers);
    let databases = ["alpha", "bravo", "charlie", "delta"];
    let records = interleaved_records(&databases, 5);

    // A first batch goes through cleanly, so the errors hit mid-stream.
    let failures = run_like_lambda(&publisher, &records[..8], &mut BatchMetrics::default()).await;
    assert!(failures.is_empty(), "{label}: clean start");
    mock.request_errors(RDKafkaApiKey::Produce, errors);
    let mut totals = BatchMetrics::default();
    let failures = run_like_lambda(&publisher, &records, &mut totals).await;
    if !failures.is_empty() {
        // The records from a reported failure on were tried, then sent
        // again by the retry.
        assert!(totals.resent >= 1, "{label}: {totals:?}");
        assert!(totals.resent <= totals.published, "{label}: {totals:?}");
    } else {
        assert_eq!(totals.resent, 0, "{label}: nothing was retried: {totals:?}");
    }
    mock.clear_request_errors(RDKafkaApiKey::Produce);

    let mut config = rdkafka::ClientConfig::new();
    config.set("bootstrap.servers", &brokers);
    let messages = read_all(config, TOPIC, 3, Duration::from_secs(3)).await;
    // Completeness below also proves each reported record was the earliest
    // failure: a retry starts at the reported record, so a failed record
    // before it would never be sent again and would be missing.
    let sequences = check_sequences(&messages);
    for db in databases {
        let expected: Vec<String> = std::iter::once("created".to_string())
            .chain(std::iter::repeat_n("transacted".to_string(), 5))
            .chain(std::iter::once("deleted".to_string()))
            .collect();
        assert_eq!(
            sequences[db], expected,
            "{label}: {db} complete and in order"
        );
    }
    println!(
        "{label}: {} messages read ({} distinct), failures reported at {failures:?}, stats: published {}, failed {}",
        messages.len(),
        databases.len() * 7,
        publisher
            .stats()
            .published
            .load(std::sync::atomic::Ordering::Relaxed),
        publisher
            .stats()
            .failed
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    (failures, messages.len(), totals)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_mid_batch() {
    let (failures, read, totals) = scenario(
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 2],
        "authorization",
    )
    .await;
    assert!(!failures.is_empty(), "a failure was reported");
    // Records queued behind a refused one can fail otherwise (transient).
    assert!(totals.failed_permanent >= 1, "counted by kind: {totals:?}");
    assert!(read > 28, "retries re-sent some messages as duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_after_successful_requests() {
    use RDKafkaRespErr::*;
    // The first produce request succeeds, the next ones fail: the failure
    // lands after records that were delivered.
    let errors = [
        RD_KAFKA_RESP_ERR_NO_ERROR,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
    ];
    let (failures, _, _) = scenario(&errors, "authorization after a success").await;
    assert!(!failures.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retriable_errors_are_retried_by_the_producer() {
    let (failures, _, _) = scenario(
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 3],
        "not leader",
    )
    .await;
    assert!(
        failures.is_empty(),
        "librdkafka retried them itself: {failures:?}"
    );
}

/// Brokers that never answer: the handler stops waiting at its deadline (one
/// timer for the whole batch) and reports the first record, so Lambda retries
/// the whole batch; the deliveries still confirmed before then count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_deliveries_fail_at_the_deadline_from_the_first_record() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic(TOPIC, 3, 1).unwrap();
    let publisher = publisher(&mock.bootstrap_servers());
    let records = interleaved_records(&["a", "b", "c"], 4);
    // Warm: metadata and connections in place, all delivered.
    assert_eq!(
        run_like_lambda(&publisher, &records[..3], &mut BatchMetrics::default()).await,
        Vec::<usize>::new()
    );
    for broker in 1..=3 {
        mock.broker_down(broker).unwrap();
    }
    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_millis(800);
    let mut metrics = BatchMetrics::default();
    let response = publisher
        .handle_measured(&event(&records), deadline, &mut metrics)
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(
        (
            metrics.published,
            metrics.failed_transient,
            metrics.failed_permanent
        ),
        (0, records.len() as u64, 0),
        "out of time is transient: {metrics:?}"
    );
    let reported: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap())
        .collect();
    assert_eq!(
        reported,
        [records[0]["dynamodb"]["SequenceNumber"].as_str().unwrap()],
        "the first record is reported"
    );
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "waited {waited:?} for an 800 ms deadline"
    );
    let failed = publisher
        .stats()
        .failed
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        failed,
        records.len() as u64,
        "every unconfirmed delivery counted"
    );
}
