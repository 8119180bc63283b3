//! The runner's event sources against real servers: the DynamoDB stream of
//! a moto table and a consumer group on tansu, with a test function that
//! fails on purpose, to see what is delivered again and what is committed.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

mod common;

use aws_lambda_events::{
    event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse},
    kafka::KafkaEvent,
};
use common::{kafka::*, *};
use evidentsource_kafka_event_source::EventSource;
use evidentsource_local_runner::{
    Shutdown,
    batcher::{BatchSettings, Outcome},
    filter::Filters,
    kafka_poller::{KafkaSource, KafkaTotals},
    stream_poller::StreamSource,
};
use evidentsource_local_servers::{create_topic, shared, unique_name};
use rdkafka::{Offset, consumer::StreamConsumer};

/// Waits until `seen` holds `n` invocations (at most 30 s).
async fn wait_for(seen: &Seen, n: usize) {
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().len() < n {
        assert!(
            tokio::time::Instant::now() < until,
            "only {:?} within 30 s",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn stream_batches_are_filtered_sized_and_retried_from_the_reported_failure() {
    let (client, table, reader) = stream_of_new_table().await;
    // Six head writes (databases a..f, n = 1..6) with other items between:
    // only the head items pass the template's filter.
    for (i, db) in ["a", "b", "c", "d", "e", "f"].iter().enumerate() {
        put(&client, &table, &format!("db#{db}"), "head", i as u32 + 1).await;
        put(&client, &table, &format!("db#{db}"), "chunk#1", 100).await;
    }
    let source = StreamSource {
        reader,
        settings: BatchSettings {
            batch_size: 4,
            max_retries: 3,
            bisect_on_error: true,
        },
        window: Duration::ZERO,
        filters: Filters::parse(&[HEAD_ONLY]).unwrap(),
        checkpoint: None,
    };
    let seen: Seen = Arc::default();
    let (stop, shutdown) = Shutdown::new();
    let calls = seen.clone();
    let run = tokio::spawn(source.run(
        move |event| {
            let calls = calls.clone();
            async move {
                let records = pk_n(&event);
                let call = {
                    let mut calls = calls.lock().unwrap();
                    calls.push(records.clone());
                    calls.len()
                };
                // 1st call: report the record n = 3 as failed.
                // 2nd call: fail the invocation (bisected).
                // Later calls: succeed.
                match call {
                    1 => {
                        let third = event.records.iter().find(|r| pk_n_of(r) == 3).unwrap();
                        let mut failure = DynamoDbBatchItemFailure::default();
                        failure.item_identifier = third.change.sequence_number.clone();
                        let mut response = DynamoDbEventResponse::default();
                        response.batch_item_failures = vec![failure];
                        Outcome::Returned(response)
                    }
                    2 => Outcome::Failed,
                    _ => Outcome::Returned(DynamoDbEventResponse::default()),
                }
            }
        },
        shutdown,
    ));
    // Records 1..6 delivered: [1,2,3,4] fails at 3, [3,4,5,6] fails whole,
    // bisected to [3,4], then [5,6].
    wait_for(&seen, 4).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop.send(true).unwrap();
    let totals = run.await.unwrap();
    let calls = ns_per_call(&seen);
    assert_eq!(
        calls,
        vec![vec![1, 2, 3, 4], vec![3, 4, 5, 6], vec![3, 4], vec![5, 6]]
    );
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .flatten()
            .all(|(pk, _)| pk.starts_with("db#")),
        "only the table's items"
    );
    assert_eq!(totals.filtered_out, 6, "{totals:?}");
    assert_eq!(totals.delivered, 6, "{totals:?}");
    assert_eq!(
        (totals.retries, totals.bisections, totals.given_up),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn stream_records_that_keep_failing_go_to_the_destination_after_the_retry_limit() {
    let (client, table, reader) = stream_of_new_table().await;
    for n in 1..=3 {
        put(&client, &table, "db#x", "head", n).await;
    }
    let source = StreamSource {
        reader,
        settings: BatchSettings {
            batch_size: 10,
            max_retries: 2,
            bisect_on_error: false,
        },
        window: Duration::ZERO,
        filters: Filters::default(),
        checkpoint: None,
    };
    let seen: Seen = Arc::default();
    let (stop, shutdown) = Shutdown::new();
    let calls = seen.clone();
    let run = tokio::spawn(source.run(
        move |event| {
            let calls = calls.clone();
            async move {
                let records = pk_n(&event);
                calls.lock().unwrap().push(records.clone());
                // n = 2 is a poison record: always reported.
                if records.iter().any(|(_, n)| *n == 2) {
                    let two = event.records.iter().find(|r| pk_n_of(r) == 2).unwrap();
                    let mut failure = DynamoDbBatchItemFailure::default();
                    failure.item_identifier = two.change.sequence_number.clone();
                    let mut response = DynamoDbEventResponse::default();
                    response.batch_item_failures = vec![failure];
                    Outcome::Returned(response)
                } else {
                    Outcome::Returned(DynamoDbEventResponse::default())
                }
            }
        },
        shutdown,
    ));
    // A later write after giving up is still delivered.
    wait_for(&seen, 3).await;
    put(&client, &table, "db#x", "head", 4).await;
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.lock().unwrap().iter().flatten().any(|(_, n)| *n == 4) {
        assert!(
            tokio::time::Instant::now() < until,
            "{:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    let totals = run.await.unwrap();
    let calls = ns_per_call(&seen);
    // The first try and two retries, then 2 and 3 are given up.
    assert_eq!(calls, vec![vec![1, 2, 3], vec![2, 3], vec![2, 3], vec![4]]);
    assert_eq!((totals.retries, totals.given_up), (2, 2), "{totals:?}");
}

/// The offsets of an event's records, per `topic-partition`.
type Positions = BTreeMap<String, Vec<i64>>;

fn positions(event: &KafkaEvent) -> Positions {
    event
        .records
        .iter()
        .map(|(k, records)| (k.clone(), records.iter().map(|r| r.offset).collect()))
        .collect()
}

/// Runs a Kafka source whose function fails its first `failures`
/// invocations; stops once `records` records were handled or, with
/// `records == 0`, after `failures` failed invocations.
async fn run_kafka(
    consumer: Arc<StreamConsumer>,
    topic: &str,
    failures: usize,
    records: u64,
) -> (KafkaTotals, Vec<Positions>) {
    let source = KafkaSource {
        consumer,
        settings: evidentsource_local_runner::template::KafkaSettings {
            // Exactly the 5 records produced, however slowly the second
            // partition's fetch arrives on a loaded machine.
            batch_size: 5,
            window: Duration::from_secs(10),
            provisioned: None,
        },
        source: EventSource::SelfManaged,
        bootstrap_servers: shared().kafka_brokers.clone(),
        on_failure: None,
    };
    let seen: Arc<Mutex<Vec<Positions>>> = Arc::default();
    let handled = Arc::new(Mutex::new(0u64));
    let (stop, shutdown) = Shutdown::new();
    let calls = seen.clone();
    let counted = handled.clone();
    let topic_owned = topic.to_owned();
    let run = tokio::spawn(async move {
        source
            .run(
                move |event: KafkaEvent| {
                    let calls = calls.clone();
                    let counted = counted.clone();
                    let topic = topic_owned.clone();
                    async move {
                        assert!(event.records.keys().all(|k| k.starts_with(&topic)));
                        let n = {
                            let mut calls = calls.lock().unwrap();
                            calls.push(positions(&event));
                            calls.len()
                        };
                        if n <= failures {
                            Err("injected failure")
                        } else {
                            *counted.lock().unwrap() +=
                                event.records.values().map(Vec::len).sum::<usize>() as u64;
                            Ok(())
                        }
                    }
                },
                shutdown,
            )
            .await
    });
    within_40s(
        || {
            if records == 0 {
                seen.lock().unwrap().len() >= failures
            } else {
                *handled.lock().unwrap() >= records
            }
        },
        || format!("{:?}", seen.lock().unwrap()),
    )
    .await;
    stop.send(true).unwrap();
    let totals = run.await.unwrap();
    let seen = seen.lock().unwrap().clone();
    (totals, seen)
}

#[tokio::test]
async fn kafka_batches_are_retried_whole_and_committed_only_after_success() {
    let topic = unique_name("runner-commands");
    create_topic(&shared().kafka_brokers, &topic, 2)
        .await
        .unwrap();
    let group = unique_name("runner-group");
    produce(&topic, &[(0, "a"), (1, "b"), (0, "c"), (1, "d"), (0, "e")]).await;

    // A function that keeps failing: the batch comes back whole, and
    // nothing is committed when the source stops.
    let first = consumer(&group, &topic);
    let (totals, seen) = run_kafka(first.clone(), &topic, 3, 0).await;
    assert_eq!(totals.commits, 0, "{totals:?}");
    assert!(seen.len() >= 3);
    assert!(seen.iter().all(|s| *s == seen[0]), "{seen:?}");
    assert_eq!(
        seen[0],
        BTreeMap::from([
            (format!("{topic}-0"), vec![0, 1, 2]),
            (format!("{topic}-1"), vec![0, 1]),
        ])
    );
    assert_eq!(
        committed(&first, &topic),
        vec![Offset::Invalid, Offset::Invalid]
    );
    drop(first);

    // The group reads them all again; two failures, then success: the
    // same batch three times, then committed past it.
    let second = consumer(&group, &topic);
    let (totals, seen) = run_kafka(second.clone(), &topic, 2, 5).await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.iter().all(|s| *s == seen[0]));
    assert_eq!(seen[0].values().map(Vec::len).sum::<usize>(), 5);
    assert_eq!((totals.failures, totals.records, totals.commits), (2, 5, 1));
    assert_eq!(
        committed(&second, &topic),
        vec![Offset::Offset(3), Offset::Offset(2)]
    );
    drop(second);

    // Only what came after the commit is delivered next.
    produce(&topic, &[(1, "f"), (0, "g")]).await;
    let third = consumer(&group, &topic);
    let (_, seen) = run_kafka(third, &topic, 0, 2).await;
    assert_eq!(
        seen,
        vec![BTreeMap::from([
            (format!("{topic}-0"), vec![3]),
            (format!("{topic}-1"), vec![2]),
        ])]
    );
}
