//! `POST /databases/{name}/transactions?mode=async` on the ingestion
//! function: the command it publishes goes through the processor, and the
//! response appears on the responses topic under the correlation id the
//! API answered with.

mod common;

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use common::*;
use evidentsource_command_ingestion::App;
use evidentsource_kafka_event_source::{EventSource, kafka_event};
use evidentsource_local_servers::unique_name;
use evidentsource_proto::{
    Message, TransactRequest,
    cloudevents::{CloudEvent, cloud_event::Data},
    command_response::Result as Outcome,
};
use lambda_http::{Body, Request};
use serde_json::{Value, json};
use tokio::time::Instant;

fn request(method: &str, uri: &str, body: Body, content_type: &str) -> Request {
    lambda_http::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(body)
        .unwrap()
}

async fn call(app: &App, r: Request) -> (u16, Value) {
    let response = app.handle(r).await;
    let status = response.status().as_u16();
    let body = match response.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_transaction_round_trips_to_its_response() {
    let setup = Setup::new().await;
    let app = setup.http_app();
    let name = unique_name("shop");
    let (status, _) = call(
        &app,
        request(
            "POST",
            "/databases",
            json!({ "name": name }).to_string().into(),
            "application/json",
        ),
    )
    .await;
    assert_eq!(status, 201);

    let uri = format!("/databases/{name}/transactions?mode=async");
    let body = json!({"events": [
        {"specversion": "1.0", "id": "1", "source": "https://shop.example.com/orders", "type": "placed", "data": {"n": 1}},
        {"specversion": "1.0", "id": "2", "source": "https://shop.example.com/orders", "type": "placed", "data": {"n": 2}}
    ]});
    let (status, answer) = call(
        &app,
        request("POST", &uri, body.to_string().into(), "application/json"),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let first = answer["correlation_id"].as_str().unwrap().to_owned();

    // Invalid requests are refused at the door and publish nothing.
    let bad = json!({"events": [{"specversion": "1.0", "id": "3", "type": "placed"}]});
    let (status, problem) = call(
        &app,
        request("POST", &uri, bad.to_string().into(), "application/json"),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["field"], "events[0].source", "{problem}");

    // Protobuf body, with the caller's own transaction id.
    let proto = TransactRequest {
        database_name: String::new(),
        events: vec![CloudEvent {
            id: "3".into(),
            source: "https://shop.example.com/orders".into(),
            spec_version: "1.0".into(),
            r#type: "placed".into(),
            attributes: Default::default(),
            data: Some(Data::BinaryData(vec![1, 2, 3])),
        }],
        conditions: vec![],
        transaction_id: "order-3".into(),
    };
    let (status, answer) = call(
        &app,
        request(
            "POST",
            &uri,
            proto.encode_to_vec().into(),
            "application/protobuf",
        ),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let second = answer["correlation_id"].as_str().unwrap().to_owned();
    assert_ne!(first, second);

    // Exactly the two commands were published (the refused request added
    // nothing); the MSK event source delivers them, one batch each, in the
    // order they were submitted.
    let records = read_records(&setup.brokers, &setup.commands, 2).await;
    assert_no_more_records(&setup.brokers, &setup.commands, 2).await;
    let processor = setup.processor();
    let far = Instant::now() + Duration::from_secs(60);
    for id in [&first, &second] {
        let record = records
            .iter()
            .find(|r| r.key.as_deref() == Some(STANDARD.encode(id).as_str()))
            .unwrap_or_else(|| panic!("no command keyed {id}"))
            .clone();
        let event = kafka_event(
            [record],
            &EventSource::Msk {
                cluster_arn: "arn:aws:kafka:us-east-1:123456789012:cluster/demo/abc".into(),
            },
            &setup.brokers,
        );
        processor.handle(&event, far).await.unwrap();
    }

    let responses = read_responses(&setup.brokers, &setup.responses, 2).await;
    let by_id = by_correlation(&responses);
    let summary = |id: &str| match &by_id[id][0].parsed.response.result {
        Some(Outcome::BatchSummary(s)) => s.clone(),
        other => panic!("{id}: {other:?}"),
    };
    let (a, b) = (summary(&first), summary(&second));
    assert_eq!((a.basis, a.revision, a.event_count), (0, 2, 2));
    assert_eq!((b.basis, b.revision), (2, 3));
    assert_eq!(
        by_id[&first][0].parsed.subject.as_deref(),
        Some(name.as_str())
    );

    let (status, db) = call(
        &app,
        request(
            "GET",
            &format!("/databases/{name}"),
            Body::Empty,
            "application/json",
        ),
    )
    .await;
    assert_eq!((status, db["revision"].as_u64()), (200, Some(3)));

    // Without Kafka configured, async submit is unavailable, not silently
    // synchronous.
    let sync_only = App::new(setup.store());
    let (status, problem) = call(
        &sync_only,
        request("POST", &uri, body.to_string().into(), "application/json"),
    )
    .await;
    assert_eq!(status, 503, "{problem}");
}
