//! `GET …/events` pages by size as well as by count: 32 events of 240 KiB
//! (stored) whose JSON is mostly characters that are escaped twice on the
//! way out (once in the body, once in Lambda's response document: 15 MB in
//! all) come back over
//! several pages, each below Lambda's 6 MB response limit, linked by
//! `Link: rel="next"`, all revisions once and in order.

use evidentsource_command_ingestion::App;
use evidentsource_local_servers::{dynamodb_client, shared, unique_name};
use evidentsource_storage::{Store, StoreConfig, table::create_table};
use lambda_http::{Body, Request};
use serde_json::{Value, json};

/// Lambda's limit on a response document.
const LAMBDA_RESPONSE_LIMIT: usize = 6 * 1024 * 1024;

fn request(method: &str, uri: &str, body: Option<Value>) -> Request {
    let builder = lambda_http::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    builder
        .body(body.map_or(Body::Empty, |b| Body::Text(b.to_string())))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_events_come_back_in_pages_below_the_response_limit() {
    let client = dynamodb_client(&shared().dynamodb_endpoint);
    let table = unique_name("table");
    create_table(&client, &table).await.unwrap();
    let app = App::new(Store::new(client, StoreConfig::new(&table)));
    let db = unique_name("db");
    let created = app
        .handle(request("POST", "/databases", Some(json!({"name": db}))))
        .await;
    assert_eq!(created.status(), 201);

    // Quotes: stored as JSON they take two bytes each (240 KiB, within the
    // 256 KiB per event), and four once escaped for Lambda.
    let data = "\"".repeat(120 * 1024);
    for batch in 0..8 {
        let events: Vec<Value> = (0..4)
            .map(|i| {
                json!({"specversion": "1.0", "id": format!("e-{batch}-{i}"),
                       "source": "https://example.com/big", "type": "big", "data": data})
            })
            .collect();
        let response = app
            .handle(request(
                "POST",
                &format!("/databases/{db}/transactions"),
                Some(json!({ "events": events })),
            ))
            .await;
        assert_eq!(response.status(), 200, "{:?}", response.body());
    }

    let mut next = Some(format!("/databases/{db}/events"));
    let (mut revisions, mut pages) = (Vec::new(), 0);
    while let Some(uri) = next.take() {
        let response = app.handle(request("GET", &uri, None)).await;
        assert_eq!(response.status(), 200);
        let Body::Text(body) = response.body() else {
            panic!("a text body")
        };
        // What Lambda counts: the body as a JSON string in its document.
        let travelled = serde_json::to_string(body).unwrap().len();
        assert!(
            travelled < LAMBDA_RESPONSE_LIMIT,
            "page {pages}: {travelled} bytes"
        );
        let events: Vec<Value> = serde_json::from_str(body).unwrap();
        revisions.extend(events.iter().map(|e| e["revision"].as_u64().unwrap()));
        next = response
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap())
            .and_then(|l| l.strip_prefix('<'))
            .and_then(|l| l.split_once(">; rel=\"next\""))
            .map(|(uri, _)| uri.to_owned());
        pages += 1;
        assert!(pages < 40, "pages never end");
    }
    assert_eq!(revisions, (1..=32).collect::<Vec<u64>>());
    assert!(pages >= 3, "{pages} pages");
}
