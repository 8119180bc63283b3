//! Trace context end to end: a W3C `traceparent` on an HTTP async submit
//! travels with the command (`ce_traceparent`), the processor continues it
//! (same trace, its own parent id) on the response; a producer's own
//! `ce_traceparent` is honoured the same way; a retry gets the first
//! response, trace included, byte for byte.

mod common;

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use common::*;
use evidentsource_cloudevents_kafka::TraceContext;
use evidentsource_commands::CommandRequest;
use evidentsource_kafka_event_source::{EventSource, kafka_event};
use evidentsource_local_servers::unique_name;
use evidentsource_proto::CreateDatabaseRequest;
use lambda_http::{Body, Request};
use serde_json::{Value, json};
use tokio::time::Instant;

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const XRAY: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| std::str::from_utf8(v).unwrap())
}

/// The response continues `sent`: same trace id, flags and state, a parent
/// id of its own.
fn assert_continues(response: &Response, sent: &TraceContext) {
    let trace = response
        .parsed
        .trace
        .as_ref()
        .unwrap_or_else(|| panic!("no trace on {:?}", response.parsed));
    assert_eq!(trace.trace_id, sent.trace_id);
    assert_eq!((trace.flags, &trace.state), (sent.flags, &sent.state));
    assert_ne!(
        trace.parent_id, sent.parent_id,
        "the execution is a step of its own"
    );
    assert_eq!(
        header(&response.headers, "ce_traceparent"),
        Some(trace.to_string().as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_traceparent_reaches_the_response() {
    let setup = Setup::new().await;
    let app = setup.http_app();
    let name = unique_name("traced");
    let create = lambda_http::http::Request::builder()
        .method("POST")
        .uri("/databases")
        .header("content-type", "application/json")
        .body(Body::from(json!({ "name": name }).to_string()))
        .unwrap();
    assert_eq!(app.handle(create).await.status(), 201);

    let submit = |trace_headers: &[(&str, &str)], id: &str| -> Request {
        let mut builder = lambda_http::http::Request::builder()
            .method("POST")
            .uri(format!("/databases/{name}/transactions?mode=async"))
            .header("content-type", "application/json");
        for (k, v) in trace_headers {
            builder = builder.header(*k, *v);
        }
        let body = json!({"transaction_id": id, "events": [
            {"specversion": "1.0", "id": id, "source": "https://shop.example.com/orders", "type": "placed"}
        ]});
        builder.body(Body::from(body.to_string())).unwrap()
    };
    let correlation_id = |response: lambda_http::Response<Body>| -> String {
        assert_eq!(response.status(), 202);
        let body: Value = match response.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap(),
            other => panic!("{other:?}"),
        };
        body["correlation_id"].as_str().unwrap().to_owned()
    };
    // W3C headers win over the X-Ray header; an X-Ray header alone is
    // continued under its own trace id; no header, no trace.
    let w3c = correlation_id(
        app.handle(submit(
            &[
                ("traceparent", PARENT),
                ("tracestate", "shop=a1"),
                ("x-amzn-trace-id", XRAY),
            ],
            "t-1",
        ))
        .await,
    );
    let xray = correlation_id(
        app.handle(submit(&[("x-amzn-trace-id", XRAY)], "t-2"))
            .await,
    );
    let untraced = correlation_id(app.handle(submit(&[], "t-3")).await);

    let records = read_records(&setup.brokers, &setup.commands, 3).await;
    let record_of = |id: &str| {
        records
            .iter()
            .find(|r| r.key.as_deref() == Some(STANDARD.encode(id).as_str()))
            .unwrap_or_else(|| panic!("no command keyed {id}"))
            .clone()
    };
    let command_header = |id: &str, name: &str| -> Option<String> {
        record_of(id)
            .headers
            .iter()
            .find_map(|h| h.get(name))
            .map(|v| String::from_utf8(v.iter().map(|b| *b as u8).collect()).unwrap())
    };
    // The command carries the caller's context unchanged.
    assert_eq!(
        command_header(&w3c, "ce_traceparent").as_deref(),
        Some(PARENT)
    );
    assert_eq!(
        command_header(&w3c, "ce_tracestate").as_deref(),
        Some("shop=a1")
    );
    assert_eq!(
        command_header(&xray, "ce_traceparent").as_deref(),
        Some("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01")
    );
    assert_eq!(command_header(&untraced, "ce_traceparent"), None);

    let processor = setup.processor();
    let msk = EventSource::Msk {
        cluster_arn: "arn:aws:kafka:us-east-1:123456789012:cluster/demo/abc".into(),
    };
    for id in [&w3c, &xray, &untraced, &w3c] {
        // The last one: the event source delivers the first command again.
        let event = kafka_event([record_of(id)], &msk, &setup.brokers);
        processor.handle(&event, far()).await.unwrap();
    }
    let responses = read_responses(&setup.brokers, &setup.responses, 4).await;
    let by_id = by_correlation(&responses);
    assert_continues(
        by_id[&w3c][0],
        &TraceContext::parse(PARENT, Some("shop=a1")).unwrap(),
    );
    assert_eq!(by_id[&w3c][0].raw(), by_id[&w3c][1].raw(), "a re-delivery");
    assert_continues(by_id[&xray][0], &TraceContext::from_xray(XRAY).unwrap());
    assert_eq!(by_id[&untraced][0].parsed.trace, None);
    assert_eq!(header(&by_id[&untraced][0].headers, "ce_traceparent"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producers_traceparent_is_continued_and_a_retry_gets_the_first_response() {
    let setup = Setup::new().await;
    let command = |name: &str| {
        CommandRequest::CreateDatabase(CreateDatabaseRequest {
            database_name: name.into(),
        })
    };
    let (traced, malformed) = (unique_name("traced"), unique_name("malformed"));
    const RETRY: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let messages = [
        Raw::command(&traced, &command(&traced), false)
            .set_header("ce_traceparent", Some(PARENT.as_bytes()))
            .on(0),
        // A malformed traceparent is ignored, never a reason to refuse.
        Raw::command(&malformed, &command(&malformed), false)
            .set_header("ce_traceparent", Some(b"00-not-a-trace"))
            .set_header("ce_tracestate", Some(b"k=v"))
            .on(0),
        // The client retries the first command in a new trace: the same
        // command, answered with the first response.
        Raw::command(&traced, &command(&traced), true)
            .set_header("ce_traceparent", Some(RETRY.as_bytes()))
            .on(0),
    ];
    produce(&setup.brokers, &setup.commands, &messages).await;
    let records = read_records(&setup.brokers, &setup.commands, 3).await;
    let report = setup
        .processor()
        .handle(&lambda_event(records, &setup.brokers), far())
        .await
        .unwrap();
    assert_eq!((report.executed, report.replayed), (2, 1));
    let responses = read_responses(&setup.brokers, &setup.responses, 3).await;
    let by_id = by_correlation(&responses);
    let (first, retried, untraced) = (by_id[&traced][0], by_id[&traced][1], by_id[&malformed][0]);
    assert_eq!(first.parsed.error(), None);
    assert_continues(first, &TraceContext::parse(PARENT, None).unwrap());
    assert_eq!(retried.raw(), first.raw());
    assert_eq!(untraced.parsed.error(), None, "{:?}", untraced.parsed);
    assert_eq!(untraced.parsed.trace, None);
    assert_eq!(header(&untraced.headers, "ce_tracestate"), None);
}
