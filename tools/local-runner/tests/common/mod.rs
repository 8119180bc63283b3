//! What the event source tests share: tables with a stream in moto, and
//! what a test function saw.
#![allow(dead_code)]

pub mod api;
pub mod kafka;

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::{
    config::{BehaviorVersion, Credentials, Region},
    types::AttributeValue,
};
use evidentsource_dynamodb_stream::StreamReader;
use evidentsource_local_servers::{dynamodb_client, shared, unique_name};

pub const HEAD_ONLY: &str =
    r#"{"eventName": ["INSERT", "MODIFY"], "dynamodb": {"Keys": {"sk": {"S": ["head"]}}}}"#;

pub async fn stream_of_new_table() -> (aws_sdk_dynamodb::Client, String, StreamReader) {
    let (client, table, arn) = new_table().await;
    let reader = StreamReader::open(streams_client(), &arn, "us-east-1")
        .await
        .unwrap();
    (client, table, reader)
}

/// A new table: (client, name, stream ARN).
pub async fn new_table() -> (aws_sdk_dynamodb::Client, String, String) {
    let client = dynamodb_client(&shared().dynamodb_endpoint);
    let table = unique_name("runner-stream");
    let arn = evidentsource_storage::table::create_table(&client, &table)
        .await
        .unwrap();
    (client, table, arn)
}

pub fn streams_client() -> aws_sdk_dynamodbstreams::Client {
    aws_sdk_dynamodbstreams::Client::from_conf(
        aws_sdk_dynamodbstreams::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&shared().dynamodb_endpoint)
            .credentials_provider(Credentials::new("local", "local", None, None, "test"))
            .build(),
    )
}

pub async fn put(client: &aws_sdk_dynamodb::Client, table: &str, pk: &str, sk: &str, n: u32) {
    client
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(pk.into()))
        .item("sk", AttributeValue::S(sk.into()))
        .item("n", AttributeValue::N(n.to_string()))
        .send()
        .await
        .unwrap();
}

/// (pk, n) of each record of an invocation.
pub type Seen = Arc<Mutex<Vec<Vec<(String, u32)>>>>;

pub fn pk_n(event: &aws_lambda_events::event::dynamodb::Event) -> Vec<(String, u32)> {
    event
        .records
        .iter()
        .map(|r| {
            let image = serde_json::to_value(&r.change.new_image).unwrap();
            (
                image["pk"]["S"].as_str().unwrap().to_owned(),
                image["n"]["N"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// The `n` of each record, per invocation.
pub fn ns_per_call(seen: &Seen) -> Vec<Vec<u32>> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|c| c.iter().map(|(_, n)| *n).collect())
        .collect()
}

/// Waits (at most 90 s) until the runner `child` has written `stack_env`:
/// the stack is up.
pub async fn wait_for_stack_env(child: &mut std::process::Child, stack_env: &std::path::Path) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while !stack_env.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the runner exited early: {status}");
        }
        assert!(
            std::time::Instant::now() < until,
            "no stack.env within 90 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

pub fn pk_n_of(record: &aws_lambda_events::event::dynamodb::EventRecord) -> u32 {
    let image = serde_json::to_value(&record.change.new_image).unwrap();
    image["n"]["N"].as_str().unwrap().parse().unwrap()
}
