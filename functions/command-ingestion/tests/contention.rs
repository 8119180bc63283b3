//! The handler under contention (issue 16, items 1, 3 and 6), against moto,
//! called as the Lambda runtime calls it: with the deadline of the
//! function's `Timeout` in `template.yaml`, and stopped at that timeout.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use evidentsource_command_ingestion::{App, DEFAULT_TIMEOUT};
use evidentsource_local_servers::{dynamodb_client, shared, unique_name, workspace_root};
use evidentsource_proto::{
    Message, TransactRequest,
    cloudevents::{
        CloudEvent,
        cloud_event::{CloudEventAttributeValue, Data, cloud_event_attribute_value::Attr},
    },
};
use evidentsource_storage::{Deadline, Store, StoreConfig, table::create_table};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use tokio::time::Instant;

/// The command ingestion function's `Timeout` in `template.yaml`.
fn template_timeout() -> Duration {
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let function = template
        .split("\n  CommandIngestionFunction:\n")
        .nth(1)
        .expect("CommandIngestionFunction in template.yaml");
    let seconds = function
        .lines()
        .find_map(|l| l.trim().strip_prefix("Timeout:"))
        .expect("its Timeout")
        .trim()
        .parse()
        .unwrap();
    Duration::from_secs(seconds)
}

async fn app() -> App {
    let client = dynamodb_client(&shared().dynamodb_endpoint);
    let table = unique_name("table");
    create_table(&client, &table).await.unwrap();
    App::new(Store::new(client, StoreConfig::new(table)))
}

fn json_request(method: &str, uri: &str, body: Value) -> Request {
    lambda_http::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn text(response: &Response<Body>) -> String {
    match response.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        Body::Empty => String::new(),
        _ => String::new(),
    }
}

/// One invocation: the handler gets the deadline of a function with
/// `timeout` and is stopped at `timeout`, as Lambda does. `None`: it ran
/// into the timeout.
async fn invoke(app: &App, request: Request, timeout: Duration) -> Option<Response<Body>> {
    let deadline = Deadline::for_timeout(timeout);
    tokio::time::timeout(timeout, app.handle_until(request, deadline))
        .await
        .ok()
}

#[test]
fn the_default_timeout_is_the_templates() {
    assert_eq!(DEFAULT_TIMEOUT, template_timeout());
}

/// 16 writers × 50 transactions on one database: every request answers
/// within the function's timeout, with 200, 409 (a claim already won) or
/// 503 (busy, with `retry-after`), and the 200s form one contiguous chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_through_the_handler_never_run_into_the_timeout() {
    const WRITERS: usize = 16;
    const PER_WRITER: usize = 50;
    let timeout = template_timeout();
    let app = Arc::new(app().await);
    let name = unique_name("db");
    let created = app
        .handle(json_request("POST", "/databases", json!({"name": name})))
        .await;
    assert_eq!(created.status(), 201);

    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (app, name) = (app.clone(), name.clone());
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..PER_WRITER {
                // Every 5th transaction claims a subject shared by 4 writers.
                let claim = (i % 5 == 0).then(|| format!("claim-{}-{i}", w % 4));
                let subject = claim.clone().unwrap_or_else(|| format!("w{w}"));
                let id = format!("w{w}-{i}");
                let conditions: Vec<Value> = claim
                    .iter()
                    .map(|c| json!({"selector": {"subject_equals": c}, "max": 0}))
                    .collect();
                let body = json!({
                    "transaction_id": id,
                    "events": [{"specversion": "1.0", "id": id,
                                "source": format!("https://example.com/writer{w}"),
                                "type": "wrote", "subject": subject, "data": {"i": i}}],
                    "conditions": conditions,
                });
                let uri = format!("/databases/{name}/transactions");
                let request = json_request("POST", &uri, body.clone());
                let started = Instant::now();
                let response = invoke(&app, request, timeout).await;
                outcomes.push((claim, (uri, body), started.elapsed(), response));
            }
            outcomes
        }));
    }

    let mut statuses: HashMap<u16, usize> = HashMap::new();
    let mut timeouts = 0;
    let mut latencies = Vec::new();
    let mut chain = HashMap::new();
    let mut won = Vec::new();
    let mut unsettled = Vec::new();
    for task in tasks {
        for (claim, request, took, response) in task.await.unwrap() {
            latencies.push(took);
            let Some(response) = response else {
                timeouts += 1;
                continue;
            };
            let status = response.status().as_u16();
            *statuses.entry(status).or_default() += 1;
            let body: Value = serde_json::from_str(&text(&response)).unwrap_or(Value::Null);
            match status {
                200 => {
                    let basis = body["basis"].as_u64().unwrap();
                    let revision = body["revision"].as_u64().unwrap();
                    assert_eq!(revision, basis + 1, "{body}");
                    assert!(
                        chain.insert(basis, revision).is_none(),
                        "basis {basis} twice"
                    );
                    won.extend(claim);
                }
                409 => {
                    assert_eq!(body["code"], "FAILED_PRECONDITION", "{body}");
                    assert!(claim.is_some(), "only claims can fail: {body}");
                }
                503 => {
                    assert_eq!(body["code"], "INTERNAL", "{body}");
                    assert!(response.headers().contains_key("retry-after"));
                    unsettled.push((claim, request));
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }
    }
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[latencies.len() * 99 / 100];
    let max = *latencies.last().unwrap();
    println!(
        "{} requests: {statuses:?}, timeouts {timeouts}, p50 {p50:?}, p99 {p99:?}, max {max:?} \
         (deadline {:?}, timeout {timeout:?})",
        latencies.len(),
        timeout.saturating_sub(Deadline::MARGIN)
    );
    assert_eq!(timeouts, 0, "no request ran into the function's timeout");

    // A 503 may come from a commit cut off at the deadline that happened
    // all the same: the client's retry with the same transaction id settles
    // it, as docs/api.md tells clients to do. Now without contention.
    for (claim, (uri, body)) in unsettled {
        let response = invoke(&app, json_request("POST", &uri, body), timeout)
            .await
            .expect("answered in time");
        let body: Value = serde_json::from_str(&text(&response)).unwrap();
        match response.status().as_u16() {
            200 => {
                let basis = body["basis"].as_u64().unwrap();
                assert!(
                    chain.insert(basis, basis + 1).is_none(),
                    "basis {basis} twice"
                );
                won.extend(claim);
            }
            409 => assert!(claim.is_some(), "{body}"),
            other => panic!("retry of a 503: {other} {body}"),
        }
    }

    // The 200s are the database's whole history, contiguous.
    let head = app
        .handle(json_request(
            "GET",
            &format!("/databases/{name}"),
            Value::Null,
        ))
        .await;
    let head: Value = serde_json::from_str(&text(&head)).unwrap();
    let revision = head["revision"].as_u64().unwrap();
    let mut next = 0;
    while let Some(r) = chain.get(&next) {
        next = *r;
    }
    assert_eq!(next, revision, "the 200s chain from 0 to the head");
    assert_eq!(chain.len() as u64, revision, "one 200 per commit");
    let unique: HashSet<_> = won.iter().collect();
    assert_eq!(unique.len(), won.len(), "a claim never wins twice");
}

/// Concurrent requests with one transaction id whose condition fails
/// against its own commit: every answer is the first one, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_get_the_first_answer_byte_for_byte() {
    const ROUNDS: usize = 30;
    const REQUESTS: usize = 10;
    let app = Arc::new(app().await);
    let name = unique_name("db");
    app.handle(json_request("POST", "/databases", json!({"name": name})))
        .await;
    for round in 0..ROUNDS {
        let subject = format!("account-{round}");
        let body = json!({
            "transaction_id": format!("open-{round}"),
            "events": [{"specversion": "1.0", "id": format!("open-{round}"),
                        "source": "https://example.com/accounts", "type": "opened",
                        "subject": subject, "data": {}}],
            "conditions": [{"selector": {"subject_equals": subject}, "max": 0}],
        });
        let tasks: Vec<_> = (0..REQUESTS)
            .map(|i| {
                let (app, body) = (app.clone(), body.clone());
                let uri = format!("/databases/{name}/transactions");
                tokio::spawn(async move {
                    // Arriving over a few round trips, as retries do.
                    tokio::time::sleep(Duration::from_millis((i * (round % 5)) as u64)).await;
                    let response = app.handle(json_request("POST", &uri, body)).await;
                    (response.status().as_u16(), text(&response))
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        for answer in &answers {
            assert_eq!(answer, &answers[0], "round {round}: {answers:#?}");
        }
        assert_eq!(answers[0].0, 200, "round {round}: {}", answers[0].1);
        let summary: Value = serde_json::from_str(&answers[0].1).unwrap();
        assert_eq!(
            summary["revision"],
            round as u64 + 1,
            "one commit per round"
        );
    }
}

/// A transaction within every domain limit but over DynamoDB's 4 MB per
/// transaction (incompressible extension attributes) is a 400 naming the
/// limit, never a 500, and writes nothing.
#[tokio::test]
async fn a_transaction_too_large_to_store_is_a_400() {
    let app = app().await;
    let name = unique_name("db");
    app.handle(json_request("POST", "/databases", json!({"name": name})))
        .await;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let events: Vec<CloudEvent> = (0..17)
        .map(|i| {
            let blob: Vec<u8> = (0..240_000)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            CloudEvent {
                id: format!("blob-{i}"),
                source: "https://example.com/blobs".into(),
                spec_version: "1.0".into(),
                r#type: "stored".into(),
                attributes: [(
                    "blob".to_string(),
                    CloudEventAttributeValue {
                        attr: Some(Attr::CeBytes(blob)),
                    },
                )]
                .into(),
                data: Some(Data::BinaryData(vec![1])),
            }
        })
        .collect();
    let body = TransactRequest {
        database_name: String::new(),
        events,
        conditions: vec![],
        transaction_id: String::new(),
    }
    .encode_to_vec();
    assert!(body.len() < evidentsource_command_ingestion::MAX_BODY_BYTES);
    let request = lambda_http::http::Request::builder()
        .method("POST")
        .uri(format!("/databases/{name}/transactions"))
        .header("content-type", "application/protobuf")
        .body(Body::from(body))
        .unwrap();
    let response = app.handle(request).await;
    let problem: Value = serde_json::from_str(&text(&response)).unwrap();
    assert_eq!(response.status(), 400, "{problem}");
    assert_eq!(problem["code"], "INVALID_ARGUMENT");
    assert_eq!(problem["field"], "events");
    assert!(
        problem["detail"].as_str().unwrap().contains("4000000"),
        "names the limit: {problem}"
    );
    let head = app
        .handle(json_request(
            "GET",
            &format!("/databases/{name}"),
            Value::Null,
        ))
        .await;
    let head: Value = serde_json::from_str(&text(&head)).unwrap();
    assert_eq!(head["revision"], 0, "nothing written");
}
