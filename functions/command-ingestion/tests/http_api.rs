//! Every route and error of the HTTP API, against moto, through the same
//! handler the Lambda runs.

use evidentsource_command_ingestion::{App, MAX_BODY_BYTES};
use evidentsource_local_servers::{dynamodb_client, shared, unique_name};
use evidentsource_proto::{
    Message, TransactRequest,
    cloudevents::{CloudEvent, cloud_event::Data},
};
use evidentsource_storage::{Store, StoreConfig, table::create_table};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

async fn app() -> App {
    let client = dynamodb_client(&shared().dynamodb_endpoint);
    let table = unique_name("table");
    create_table(&client, &table).await.unwrap();
    App::new(Store::new(client, StoreConfig::new(table)))
}

fn request(method: &str, uri: &str, body: impl Into<Body>, content_type: Option<&str>) -> Request {
    let mut r = lambda_http::http::Request::builder()
        .method(method)
        .uri(uri);
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    r.body(body.into()).unwrap()
}

fn get(uri: &str) -> Request {
    request("GET", uri, Body::Empty, None)
}

fn json_req(method: &str, uri: &str, body: Value) -> Request {
    request(method, uri, body.to_string(), Some("application/json"))
}

async fn call(app: &App, r: Request) -> (u16, Value, Response<Body>) {
    let response = app.handle(r).await;
    let status = response.status().as_u16();
    let body: Value = match response.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        Body::Binary(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, body, response)
}

fn ev(id: &str, stream: &str, subject: &str) -> Value {
    json!({"specversion": "1.0", "id": id, "source": format!("https://example.com/{stream}"),
           "type": "com.shop.placed", "subject": subject, "data": {"n": id}})
}

fn assert_problem(status: u16, body: &Value, response: &Response<Body>, expected: u16, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], expected);
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn database_lifecycle_routes() {
    let app = app().await;
    let name = unique_name("db");

    let (s, b, r) = call(&app, json_req("POST", "/databases", json!({"name": name}))).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(b["name"], name.as_str());
    assert_eq!(
        (b["basis"].as_u64(), b["revision"].as_u64()),
        (Some(0), Some(0))
    );
    let created_at = b["created_at"].as_str().unwrap().to_owned();
    assert!(
        created_at.ends_with('Z') && created_at.len() == 24,
        "{created_at}"
    );
    assert_eq!(b["revision_timestamp"], b["created_at"]);

    let (s, b, r) = call(&app, json_req("POST", "/databases", json!({"name": name}))).await;
    assert_problem(s, &b, &r, 409, "ALREADY_EXISTS");

    let (s, b, _) = call(&app, get(&format!("/databases/{name}"))).await;
    assert_eq!((s, b["name"].as_str()), (200, Some(name.as_str())));

    let (s, b, _) = call(
        &app,
        request("DELETE", &format!("/databases/{name}"), Body::Empty, None),
    )
    .await;
    assert_eq!((s, b["revision"].as_u64()), (200, Some(0)));
    for (method, uri) in [
        ("GET", format!("/databases/{name}")),
        ("DELETE", format!("/databases/{name}")),
    ] {
        let (s, b, r) = call(&app, request(method, &uri, Body::Empty, None)).await;
        assert_problem(s, &b, &r, 404, "NOT_FOUND");
    }
    // Re-created: revision 0 again.
    let (s, b, _) = call(&app, json_req("POST", "/databases", json!({"name": name}))).await;
    assert_eq!((s, b["revision"].as_u64()), (201, Some(0)));
}

#[tokio::test]
async fn transact_and_read_events() {
    let app = app().await;
    let name = unique_name("db");
    call(&app, json_req("POST", "/databases", json!({"name": name}))).await;
    let uri = format!("/databases/{name}/transactions");

    let body = json!({
        "transaction_id": "t-1",
        "events": [ev("e1", "orders", "o-1"), ev("e2", "orders", "o-2")],
        "conditions": [{"selector": {"stream_equals": "orders"}, "max": 0}]
    });
    let (s, first, _) = call(&app, json_req("POST", &uri, body.clone())).await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(first["database"], name.as_str());
    assert_eq!(
        (
            first["basis"].as_u64(),
            first["revision"].as_u64(),
            first["event_count"].as_u64()
        ),
        (Some(0), Some(2), Some(2))
    );
    assert!(first["id"].as_str().is_some_and(|i| i.len() == 36));
    assert!(first["recorded_time"].as_str().is_some());

    // Idempotent retry: the same answer, nothing new.
    let (s, again, _) = call(&app, json_req("POST", &uri, body)).await;
    assert_eq!((s, &again), (200, &first));

    // A failing condition is 409 FAILED_PRECONDITION naming it.
    let conflicting = json!({"events": [ev("e3", "orders", "o-3")],
        "conditions": [{"selector": {"stream_equals": "orders"}, "max": 0}]});
    let (s, b, r) = call(&app, json_req("POST", &uri, conflicting)).await;
    assert_problem(s, &b, &r, 409, "FAILED_PRECONDITION");
    assert_eq!(b["field"], "conditions[0]");

    // Optimistic concurrency with the revision read: holds.
    let ok = json!({"events": [ev("e3", "orders", "o-3")],
        "conditions": [{"selector": {"stream_equals": "orders"}, "max": "2"}]});
    let (s, b, _) = call(&app, json_req("POST", &uri, ok)).await;
    assert_eq!((s, b["revision"].as_u64()), (200, Some(3)), "{b}");

    // The protobuf body of the transact request.
    let proto = TransactRequest {
        database_name: String::new(),
        events: vec![CloudEvent {
            id: "p1".into(),
            source: "https://example.com/payments".into(),
            spec_version: "1.0".into(),
            r#type: "com.shop.paid".into(),
            attributes: Default::default(),
            data: Some(Data::BinaryData(vec![1, 2, 3])),
        }],
        conditions: vec![],
        transaction_id: "proto-1".into(),
    };
    let (s, b, _) = call(
        &app,
        request(
            "POST",
            &uri,
            proto.encode_to_vec(),
            Some("application/protobuf"),
        ),
    )
    .await;
    assert_eq!((s, b["revision"].as_u64()), (200, Some(4)), "{b}");

    let (s, events, r) = call(&app, get(&format!("/databases/{name}/events?from=2&to=4"))).await;
    assert_eq!(s, 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/cloudevents-batch+json"
    );
    let events = events.as_array().unwrap();
    let summary: Vec<_> = events
        .iter()
        .map(|e| (e["revision"].as_u64().unwrap(), e["id"].as_str().unwrap()))
        .collect();
    assert_eq!(summary, [(2, "e2"), (3, "e3"), (4, "p1")]);
    assert_eq!(events[0]["data"], json!({"n": "e2"}));
    assert_eq!(events[0]["subject"], "o-2");
    assert_eq!(events[2]["data_base64"], "AQID");

    let (s, all, _) = call(&app, get(&format!("/databases/{name}/events"))).await;
    assert_eq!((s, all.as_array().map(Vec::len)), (200, Some(4)));
}

#[tokio::test]
async fn bad_input_is_4xx_naming_the_field() {
    let app = app().await;
    let name = unique_name("db");
    call(&app, json_req("POST", "/databases", json!({"name": name}))).await;
    let tx_uri = format!("/databases/{name}/transactions");

    let cases: Vec<(Request, u16, &str, Option<&str>)> = vec![
        (
            json_req("POST", "/databases", json!({})),
            400,
            "INVALID_ARGUMENT",
            Some("name"),
        ),
        (
            json_req("POST", "/databases", json!({"name": "9lives"})),
            400,
            "INVALID_ARGUMENT",
            Some("name"),
        ),
        (
            json_req("POST", "/databases", json!({"name": "ok-name", "extra": 1})),
            400,
            "INVALID_ARGUMENT",
            Some("extra"),
        ),
        (
            request("POST", "/databases", "{", Some("application/json")),
            400,
            "INVALID_ARGUMENT",
            Some("body"),
        ),
        (
            get("/databases/a%20b"),
            400,
            "INVALID_ARGUMENT",
            Some("name"),
        ),
        (get("/databases/nope-nope"), 404, "NOT_FOUND", None),
        (
            json_req(
                "POST",
                "/databases/nope-nope/transactions",
                json!({"events": [ev("1", "orders", "s")]}),
            ),
            404,
            "NOT_FOUND",
            None,
        ),
        (
            json_req("POST", &tx_uri, json!({"events": []})),
            400,
            "INVALID_ARGUMENT",
            Some("events"),
        ),
        (
            json_req("POST", &tx_uri, json!({"events": [{"id": "1"}]})),
            400,
            "INVALID_ARGUMENT",
            Some("events[0].specversion"),
        ),
        (
            json_req("POST", &tx_uri, json!({"events": [ev("1", "", "s")]})),
            400,
            "INVALID_ARGUMENT",
            Some("events[0].source"),
        ),
        (
            json_req(
                "POST",
                &tx_uri,
                json!({"events": [ev("1", "orders", "s"), ev("1", "orders", "t")]}),
            ),
            400,
            "INVALID_ARGUMENT",
            Some("events[1].id"),
        ),
        (
            json_req(
                "POST",
                &tx_uri,
                json!({"events": [ev("1", "orders", "s")], "conditions": [{"max": 0}]}),
            ),
            400,
            "INVALID_ARGUMENT",
            Some("conditions[0].selector"),
        ),
        (
            json_req(
                "POST",
                &tx_uri,
                json!({"events": [ev("1", "orders", "s")], "conditions": [{"selector": {"stream_equals": "x"}, "range": {"min": 5, "max": 1}}]}),
            ),
            400,
            "INVALID_ARGUMENT",
            Some("conditions[0].range"),
        ),
        (
            json_req(
                "POST",
                &tx_uri,
                json!({"events": [ev("1", "orders", "s")], "transaction_id": 7}),
            ),
            400,
            "INVALID_ARGUMENT",
            Some("transaction_id"),
        ),
        (
            json_req(
                "POST",
                &format!("{tx_uri}?mode=fast"),
                json!({"events": [ev("1", "orders", "s")]}),
            ),
            400,
            "INVALID_ARGUMENT",
            Some("mode"),
        ),
        (
            request("POST", &tx_uri, "x", Some("text/plain")),
            415,
            "INVALID_ARGUMENT",
            None,
        ),
        (
            request(
                "POST",
                "/databases",
                r#"{"name": "shop"}"#,
                Some("application/xml"),
            ),
            415,
            "INVALID_ARGUMENT",
            None,
        ),
        (
            json_req(
                "POST",
                &tx_uri,
                json!({"events": [{"specversion": "1.0", "id": "1", "source": "https://x/orders",
                                   "type": "t", "time": "0000-01-01T00:00:00Z"}]}),
            ),
            400,
            "INVALID_ARGUMENT",
            Some("events[0].time"),
        ),
        (
            json_req(
                "POST",
                &tx_uri,
                json!({"events": [{"specversion": "1.0", "id": "1", "source": "https://x/orders",
                                   "type": "t", "dataschema": "not a uri"}]}),
            ),
            400,
            "INVALID_ARGUMENT",
            Some("events[0].dataschema"),
        ),
        (
            json_req(
                "POST",
                &tx_uri,
                json!({"events": [ev("1", "orders", "s")],
                       "conditions": [{"selector": {"stream_equals": "é"}, "max": 0}]}),
            ),
            400,
            "INVALID_ARGUMENT",
            Some("conditions[0].selector.stream_equals"),
        ),
        (
            request(
                "POST",
                &tx_uri,
                vec![0xff, 0xff, 0xff],
                Some("application/protobuf"),
            ),
            400,
            "INVALID_ARGUMENT",
            Some("body"),
        ),
        (
            request(
                "POST",
                &tx_uri,
                vec![b' '; MAX_BODY_BYTES + 1],
                Some("application/json"),
            ),
            413,
            "INVALID_ARGUMENT",
            None,
        ),
        (
            get(&format!("/databases/{name}/events?from=x")),
            400,
            "INVALID_ARGUMENT",
            Some("from"),
        ),
        (
            get(&format!("/databases/{name}/events?from=0")),
            400,
            "INVALID_ARGUMENT",
            Some("from"),
        ),
        (
            get(&format!("/databases/{name}/events?from=5&to=2")),
            400,
            "INVALID_ARGUMENT",
            Some("to"),
        ),
        (get("/elsewhere"), 404, "NOT_FOUND", None),
        (
            request("PUT", "/databases", Body::Empty, None),
            405,
            "INVALID_ARGUMENT",
            None,
        ),
    ];
    for (r, status, code, field) in cases {
        let what = format!("{} {}", r.method(), r.uri());
        let (s, b, response) = call(&app, r).await;
        assert_problem(s, &b, &response, status, code);
        assert_eq!(b["field"].as_str(), field, "{what}: {b}");
    }
    let (_, _, r) = call(&app, request("PUT", "/databases", Body::Empty, None)).await;
    assert_eq!(r.headers()["allow"], "POST");
    // Nothing was committed by any of it.
    let (_, b, _) = call(&app, get(&format!("/databases/{name}"))).await;
    assert_eq!(b["revision"].as_u64(), Some(0));
}

/// The sample API Gateway events in `events/` run through the handler.
#[tokio::test]
async fn sample_events_run_through_the_handler() {
    let app = app().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    let expected = [
        ("apigw-create-database.json", 201),
        ("apigw-get-database.json", 200),
        ("apigw-transact.json", 200),
        ("apigw-transact-protobuf.json", 200),
        ("apigw-read-events.json", 200),
        ("apigw-delete-database.json", 200),
    ];
    for (file, status) in expected {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let request =
            lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let (s, b, _) = call(&app, request).await;
        assert_eq!(s, status, "{file}: {b}");
        if file == "apigw-read-events.json" {
            assert_eq!(b.as_array().map(Vec::len), Some(3), "{b}");
        }
    }
}
