//! `dlq replay` against moto (DynamoDB and SQS on one endpoint) and tansu:
//! letters as the publisher writes them for two databases, a batch the
//! event source gave up on, a database whose republish fails, one that is
//! gone, and a malformed message. The named databases' events arrive; the
//! messages whose databases were republished are deleted, the others stay.

mod common;

use std::collections::BTreeSet;

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use evidentsource_admin::dlq::{self, Replayed};
use evidentsource_domain::DatabaseName;
use evidentsource_local_servers::{local_aws, shared, unique_name};
use evidentsource_storage::Store;
use evidentsource_stream_publisher::DeadLetter;
use serde_json::json;

fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&local_aws(&shared().dynamodb_endpoint))
}

/// The publisher's letter about a poison head record of `db`.
fn letter(db: &str, seq: u64) -> String {
    let record: EventRecord = serde_json::from_value(json!({
        "eventID": format!("e{seq}"), "eventName": "MODIFY", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
        "dynamodb": {
            "Keys": {"pk": {"S": format!("db#{db}")}, "sk": {"S": "head"}},
            "NewImage": {"revision": {"S": "two"}}, "SequenceNumber": format!("{seq:021}"),
            "SizeBytes": 1, "StreamViewType": "NEW_IMAGE"
        }
    }))
    .unwrap();
    serde_json::to_string(&DeadLetter::of(&record, "not a head item: revision")).unwrap()
}

async fn database(store: &Store, prefix: &str, transactions: usize) -> String {
    let db = DatabaseName::parse(unique_name(prefix)).unwrap();
    store.create_database(&db).await.unwrap();
    for i in 0..transactions {
        store
            .transact(&transaction(&db, 2, 10, &format!("t{i}")))
            .await
            .unwrap();
    }
    db.to_string()
}

async fn visible_bodies(url: &str) -> BTreeSet<String> {
    let mut bodies = BTreeSet::new();
    loop {
        let page = sqs()
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if page.messages().is_empty() {
            return bodies;
        }
        bodies.extend(page.messages().iter().map(|m| m.body().unwrap().to_owned()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_databases_are_republished_and_their_letters_deleted() {
    let (store, _) = table().await;
    let (alpha, bravo) = (
        database(&store, "alpha", 2).await,
        database(&store, "bravo", 1).await,
    );
    let url = sqs()
        .create_queue()
        .queue_name(unique_name("dlq"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let gone = unique_name("gone");
    let malformed = "{\"kind\": \"poison-head-record\"}".to_owned();
    for body in [
        letter(&alpha, 1),
        letter(&bravo, 2),
        letter(&alpha, 3),
        letter(&gone, 4),
        malformed.clone(),
    ] {
        sqs()
            .send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let events = topic("replayed").await;
    let republisher = republisher(&store, &events);
    let done = dlq::replay(&sqs(), &url, &republisher, 100).await.unwrap();
    let mut republished = done.republished.clone();
    republished.sort();
    let mut expected = vec![(alpha.clone(), 3), (bravo.clone(), 2)];
    expected.sort();
    assert_eq!(republished, expected, "each database once");
    assert_eq!(done.gone, [gone]);
    assert_eq!(done.failed, []);
    assert_eq!(done.malformed.len(), 1, "{:?}", done.malformed);
    assert!(
        done.malformed[0].1.contains("names no database"),
        "{:?}",
        done.malformed
    );
    assert_eq!((done.deleted, done.kept), (4, 1));
    assert!(!done.is_complete());

    // The events arrived, as republish builds them.
    let read = read_all(&events).await;
    for db in [&alpha, &bravo] {
        let expected: Vec<Read> = republisher
            .plan(db, None)
            .await
            .unwrap()
            .iter()
            .map(|e| {
                let encoded = e.encode(BASE_URI);
                Read {
                    key: encoded.key,
                    headers: encoded.message.headers,
                    value: encoded.message.value,
                }
            })
            .collect();
        assert_eq!(of(&read, db), expected, "{db}");
    }
    // Only the malformed message is left, visible again at once.
    assert_eq!(visible_bodies(&url).await, BTreeSet::from([malformed]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_republish_keeps_its_messages() {
    let (store, _) = table().await;
    let fine = database(&store, "fine", 1).await;
    let broken = database(&store, "broken", 2).await;
    // Its first transaction as a commit from before `t` left it.
    let head = store.read_head(&broken).await.unwrap().unwrap();
    store
        .client()
        .update_item()
        .table_name(&store.config().table_name)
        .key(
            "pk",
            AttributeValue::S(format!("ev#{broken}#{}", head.incarnation)),
        )
        .key("sk", AttributeValue::S(format!("{:020}", 1)))
        .update_expression("REMOVE t")
        .send()
        .await
        .unwrap();
    let url = sqs()
        .create_queue()
        .queue_name(unique_name("dlq"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    // A batch the event source gave up on: every database is republished.
    let on_failure = json!({
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
        "version": "1.0",
        "DDBStreamBatchInfo": {
            "shardId": "shardId-000001", "startSequenceNumber": "100", "endSequenceNumber": "200",
            "batchSize": 10, "streamArn": "arn:aws:dynamodb:us-east-1:1:table/t/stream/x"
        }
    })
    .to_string();
    for body in [letter(&fine, 1), letter(&broken, 2), on_failure.clone()] {
        sqs()
            .send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let events = topic("replayed").await;
    let done: Replayed = dlq::replay(&sqs(), &url, &republisher(&store, &events), 100)
        .await
        .unwrap();
    assert_eq!(done.republished, [(fine.clone(), 2)]);
    assert_eq!(done.failed.len(), 1);
    assert_eq!(done.failed[0].0, broken);
    assert!(
        done.failed[0].1.contains("recorded time"),
        "{:?}",
        done.failed
    );
    assert_eq!((done.deleted, done.kept), (1, 2));
    assert!(!done.is_complete());
    assert_eq!(of(&read_all(&events).await, &fine).len(), 2);
    assert!(of(&read_all(&events).await, &broken).is_empty());
    assert_eq!(
        visible_bodies(&url).await,
        BTreeSet::from([letter(&broken, 2), on_failure])
    );
}
