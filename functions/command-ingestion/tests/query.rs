//! `POST /databases/{name}/query` through the handler the Lambda runs,
//! against moto: the DCB read → decide → append loop (a concurrent append
//! makes the decision's `Max(selector, as_of)` fail with 409, a re-read
//! sees it), its errors, paging by count and by size (each page below
//! Lambda's 6 MB response limit), and the protobuf form.

use evidentsource_command_ingestion::App;
use evidentsource_local_servers::{dynamodb_client, shared, unique_name};
use evidentsource_proto::{EventSelector, Message, QueryRequest, QueryResponse, event_selector};
use evidentsource_storage::{Store, StoreConfig, table::create_table};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

/// Lambda's limit on a response document.
const LAMBDA_RESPONSE_LIMIT: usize = 6 * 1024 * 1024;

async fn app_with_db() -> (App, String) {
    let client = dynamodb_client(&shared().dynamodb_endpoint);
    let table = unique_name("table");
    create_table(&client, &table).await.unwrap();
    let app = App::new(Store::new(client, StoreConfig::new(table)));
    let db = unique_name("db");
    let (s, b, _) = call(&app, post("/databases", json!({"name": db}))).await;
    assert_eq!(s, 201, "{b}");
    (app, db)
}

fn request(method: &str, uri: &str, body: impl Into<Body>, content_type: &str) -> Request {
    lambda_http::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(body.into())
        .unwrap()
}

fn post(uri: &str, body: Value) -> Request {
    request("POST", uri, body.to_string(), "application/json")
}

async fn call(app: &App, r: Request) -> (u16, Value, Response<Body>) {
    let response = app.handle(r).await;
    let body = match response.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (response.status().as_u16(), body, response)
}

fn ev(id: &str, subject: &str, data: Value) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "https://example.com/bank/accounts",
           "type": "com.bank.deposited", "subject": subject, "data": data})
}

async fn append(app: &App, db: &str, events: Vec<Value>, conditions: Value) -> (u16, Value) {
    let uri = format!("/databases/{db}/transactions");
    let body = json!({"events": events, "conditions": conditions});
    let (s, b, _) = call(app, post(&uri, body)).await;
    (s, b)
}

#[tokio::test]
async fn read_decide_append_with_max_as_of_and_a_concurrent_writer() {
    let (app, db) = app_with_db().await;
    let uri = format!("/databases/{db}/query");
    for (i, subject) in ["account-42", "account-7", "account-42"].iter().enumerate() {
        let id = format!("e-{i}");
        let (s, b) = append(
            &app,
            &db,
            vec![ev(&id, subject, json!({"n": i}))],
            json!([]),
        )
        .await;
        assert_eq!(s, 200, "{b}");
    }
    let selector = json!({"subject_equals": "account-42"});

    // Read.
    let (s, page, r) = call(&app, post(&uri, json!({"selector": selector}))).await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(page["as_of"], 3);
    assert_eq!(page["next_from"], Value::Null);
    let revisions: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["revision"].as_u64().unwrap())
        .collect();
    assert_eq!(revisions, [1, 3]);
    // Rendered as GET …/events renders them.
    assert_eq!(page["events"][1]["id"], "e-2");
    assert_eq!(page["events"][1]["data"], json!({"n": 2}));

    // Someone else appends to the same account meanwhile.
    let (s, _) = append(
        &app,
        &db,
        vec![ev("other", "account-42", json!({}))],
        json!([]),
    )
    .await;
    assert_eq!(s, 200);

    // Decide and append on what was read: refused, nothing written.
    let condition = json!([{"selector": selector, "max": page["as_of"]}]);
    let (s, b) = append(
        &app,
        &db,
        vec![ev("mine", "account-42", json!({}))],
        condition,
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (409, Some("FAILED_PRECONDITION")),
        "{b}"
    );

    // Read again: the other append is there; deciding on it succeeds.
    let (s, page, _) = call(&app, post(&uri, json!({"selector": selector}))).await;
    assert_eq!((s, page["as_of"].as_u64()), (200, Some(4)), "{page}");
    assert_eq!(page["events"][2]["id"], "other");
    let condition = json!([{"selector": selector, "max": page["as_of"]}]);
    let (s, b) = append(
        &app,
        &db,
        vec![ev("mine", "account-42", json!({}))],
        condition,
    )
    .await;
    assert_eq!((s, b["revision"].as_u64()), (200, Some(5)), "{b}");
}

#[tokio::test]
async fn pages_by_count_then_empty_matches_and_protobuf() {
    let (app, db) = app_with_db().await;
    let uri = format!("/databases/{db}/query");
    let events = (0..5)
        .map(|i| ev(&format!("e-{i}"), &format!("account-{}", i % 2), json!(i)))
        .collect();
    assert_eq!(append(&app, &db, events, json!([])).await.0, 200);

    // account-0: revisions 1, 3, 5, two a page.
    let selector = json!({"or": {"selectors": [{"subject_equals": "account-0"}, {"event_type_equals": "none"}]}});
    let (mut next, mut seen) = (Some(json!(1)), Vec::new());
    while let Some(from) = next.take() {
        let body = json!({"selector": selector, "from": from, "limit": 2});
        let (s, page, _) = call(&app, post(&uri, body)).await;
        assert_eq!(s, 200, "{page}");
        seen.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["revision"].clone()),
        );
        next = Some(page["next_from"].clone()).filter(|n| !n.is_null());
        assert!(seen.len() < 10);
    }
    assert_eq!(seen, [json!(1), json!(3), json!(5)]);

    // Nothing matches: an empty list, not a 404.
    let body = json!({"selector": {"subject_starts_with": "nobody"}, "from": "2"});
    let (s, page, _) = call(&app, post(&uri, body)).await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page, json!({"as_of": 5, "events": [], "next_from": null}));

    // Protobuf in, protobuf out.
    let q = QueryRequest {
        selector: Some(EventSelector {
            selector: Some(event_selector::Selector::SubjectEquals("account-1".into())),
        }),
        from: 0,
        limit: 1,
    };
    let r = request("POST", &uri, q.encode_to_vec(), "application/protobuf");
    let response = app.handle(r).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/protobuf");
    let Body::Binary(bytes) = response.body() else {
        panic!("a binary body")
    };
    let page = QueryResponse::decode(bytes.as_slice()).unwrap();
    assert_eq!((page.as_of, page.events.len()), (5, 1));
    // Past revision 2, up to the next match (4): more to read.
    assert!((3..=4).contains(&page.next_from), "{}", page.next_from);
    assert_eq!(page.events[0].revision, 2);
    assert_eq!(page.events[0].event.as_ref().unwrap().id, "e-1");
}

#[tokio::test]
async fn errors_name_the_field() {
    let (app, db) = app_with_db().await;
    let uri = format!("/databases/{db}/query");
    let ok = json!({"stream_equals": "accounts"});
    let table = [
        (
            json!({"selector": {"stream_equals": ""}}),
            "selector.stream_equals",
        ),
        (json!({"selector": {"bogus": 1}}), "selector"),
        (
            json!({"selector": {"and": {"selectors": []}}}),
            "selector.and",
        ),
        (json!({}), "selector"),
        (json!({"selector": ok, "from": 0}), "from"),
        (json!({"selector": ok, "from": -1}), "from"),
        (json!({"selector": ok, "limit": 0}), "limit"),
        (json!({"selector": ok, "limit": 1001}), "limit"),
        (json!({"selector": ok, "to": 5}), "to"),
        (json!([1]), "body"),
    ];
    for (body, field) in table {
        let (s, b, r) = call(&app, post(&uri, body.clone())).await;
        assert_eq!(s, 400, "{body}: {b}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        assert!(
            b["field"].as_str().is_some_and(|f| f.starts_with(field)),
            "{body}: {b}"
        );
    }
    let (s, b, _) = call(
        &app,
        post("/databases/nosuchdb/query", json!({"selector": ok})),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (404, Some("NOT_FOUND")));
    let (s, _, r) = call(&app, request("GET", &uri, Body::Empty, "application/json")).await;
    assert_eq!((s, &r.headers()["allow"]), (405, &"POST".parse().unwrap()));
    let (s, _, _) = call(&app, request("POST", &uri, "x", "text/plain")).await;
    assert_eq!(s, 415);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_events_come_back_in_pages_below_the_response_limit() {
    let (app, db) = app_with_db().await;
    // Quotes: two bytes each stored as JSON, four once escaped for Lambda.
    let data = "\"".repeat(120 * 1024);
    for batch in 0..8 {
        let events = (0..4)
            .map(|i| ev(&format!("e-{batch}-{i}"), "big", json!(data)))
            .collect();
        assert_eq!(append(&app, &db, events, json!([])).await.0, 200);
    }
    let uri = format!("/databases/{db}/query");
    let (mut next, mut revisions, mut pages) = (Some(1), Vec::new(), 0);
    while let Some(from) = next.take() {
        let body = json!({"selector": {"subject_equals": "big"}, "from": from, "limit": 1000});
        let response = app.handle(post(&uri, body)).await;
        assert_eq!(response.status(), 200);
        let Body::Text(text) = response.body() else {
            panic!("a text body")
        };
        let travelled = serde_json::to_string(text).unwrap().len();
        assert!(
            travelled < LAMBDA_RESPONSE_LIMIT,
            "page {pages}: {travelled} bytes"
        );
        let page: Value = serde_json::from_str(text).unwrap();
        revisions.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["revision"].as_u64().unwrap()),
        );
        next = page["next_from"].as_u64();
        pages += 1;
        assert!(pages < 40, "pages never end");
    }
    assert_eq!(revisions, (1..=32).collect::<Vec<u64>>());
    assert!(pages >= 3, "{pages} pages");
}
