//! Commands stuffed with ~900 KB of junk in one header or field each. Every
//! one is answered INVALID_ARGUMENT with a small response (the error quotes
//! a bounded part of the junk), the batch succeeds, and a valid command
//! behind them on the same partition is executed: junk cannot block a
//! partition by making its own reply record too large to store (DynamoDB
//! caps items at 400 KB).

mod common;

use std::time::Duration;

use common::*;
use evidentsource_commands::CommandRequest;
use evidentsource_kafka_event_source::lambda_record;
use evidentsource_local_servers::unique_name;
use evidentsource_proto::{
    AppendCondition, CreateDatabaseRequest, ErrorCode, EventSelector, TransactRequest,
    append_condition, cloudevents::CloudEvent, event_selector,
};
use rdkafka::{
    Timestamp,
    message::{Header, OwnedHeaders, OwnedMessage},
};
use tokio::time::Instant;

const JUNK_BYTES: usize = 900 * 1024;

fn junk() -> String {
    "junk-".repeat(JUNK_BYTES / 5)
}

/// What a case's error must name; or this, for a command that is valid.
const EXECUTED: &str = "(executed)";

/// A response this size or smaller is small whatever the input.
const SMALL_RESPONSE: usize = 4 * 1024;

fn create(name: &str) -> CommandRequest {
    CommandRequest::CreateDatabase(CreateDatabaseRequest {
        database_name: name.into(),
    })
}

fn transact(edit: impl FnOnce(&mut TransactRequest)) -> CommandRequest {
    let mut request = TransactRequest {
        database_name: "shop".into(),
        events: vec![CloudEvent {
            id: "1".into(),
            source: "https://example.com/orders".into(),
            spec_version: "1.0".into(),
            r#type: "placed".into(),
            ..Default::default()
        }],
        conditions: vec![],
        transaction_id: String::new(),
    };
    edit(&mut request);
    CommandRequest::Transact(request)
}

fn selector(selector: event_selector::Selector) -> AppendCondition {
    AppendCondition {
        selector: Some(EventSelector {
            selector: Some(selector),
        }),
        bound: Some(append_condition::Bound::Max(0)),
    }
}

/// (case, the message, what the error must name)
fn cases() -> Vec<(&'static str, Raw, &'static str)> {
    let ok = |id: &str| Raw::command(id, &create("shop"), false);
    let junk = junk();
    let mut cases = Vec::new();
    let mut add = |name: &'static str, build: &dyn Fn(&str) -> Raw, mentions: &'static str| {
        let id = unique_name("junk");
        cases.push((name, build(&id), mentions));
    };
    for header in ["ce_type", "ce_specversion", "ce_time", "ce_dataschema"] {
        add(
            header,
            &|id| ok(id).set_header(header, Some(junk.as_bytes())),
            header,
        );
    }
    // A source is any URI reference, so this one is executed (and its
    // response is as small as any other).
    add(
        "ce_source",
        &|id| ok(id).set_header("ce_source", Some(junk.as_bytes())),
        EXECUTED,
    );
    add(
        "content types",
        &|id| {
            ok(id)
                .set_header("content-type", Some(junk.as_bytes()))
                .set_header("ce_datacontenttype", Some(junk.as_bytes()))
        },
        "ce_datacontenttype",
    );
    add(
        "content types disagree",
        &|id| ok(id).set_header("content-type", Some(junk.as_bytes())),
        "content-type",
    );
    add(
        "header name",
        &|id| ok(id).set_header(&format!("ce_{junk}"), Some(b"x")),
        "ce_junk",
    );
    let fields: Vec<(&'static str, CommandRequest, &'static str)> = vec![
        ("database name", create(&junk), "database_name"),
        (
            "transact database name",
            transact(|r| r.database_name = junk.clone()),
            "database_name",
        ),
        (
            "event id",
            transact(|r| r.events[0].id = junk.clone()),
            "events[0]",
        ),
        (
            "event source",
            transact(|r| r.events[0].source = format!("https://x/{junk}")),
            "events[0]",
        ),
        (
            "event type",
            transact(|r| r.events[0].r#type = junk.clone()),
            "events[0]",
        ),
        (
            "event specversion",
            transact(|r| r.events[0].spec_version = junk.clone()),
            "events[0]",
        ),
        (
            "transaction id",
            transact(|r| r.transaction_id = junk.clone()),
            "transaction_id",
        ),
        (
            "stream selector",
            transact(|r| {
                r.conditions
                    .push(selector(event_selector::Selector::StreamEquals(
                        junk.clone(),
                    )))
            }),
            "conditions[0]",
        ),
        (
            "subject selector",
            transact(|r| {
                r.conditions
                    .push(selector(event_selector::Selector::SubjectEquals(
                        junk.clone(),
                    )))
            }),
            "conditions[0]",
        ),
    ];
    for (name, request, mentions) in fields {
        add(name, &|id| Raw::command(id, &request, false), mentions);
        add(name, &|id| Raw::command(id, &request, true), mentions);
    }
    cases
}

/// The record Lambda's event source would hand over for `raw`, without a
/// broker in between (a 900 KB header is the point, not the broker's limit).
fn record(raw: &Raw, topic: &str, offset: i64) -> aws_lambda_events::kafka::KafkaRecord {
    let headers = raw.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
        h.insert(Header {
            key: k,
            value: v.as_deref(),
        })
    });
    let message = OwnedMessage::new(
        raw.value.clone(),
        raw.key.clone(),
        topic.to_owned(),
        Timestamp::CreateTime(1_700_000_000_000),
        0,
        offset,
        Some(headers),
    );
    lambda_record(&message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_in_any_header_or_field_is_answered_small_and_blocks_nothing() {
    let setup = Setup::new().await;
    let cases = cases();
    let valid_id = unique_name("after-junk");
    let mut records: Vec<_> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, raw, _))| record(raw, &setup.commands, i as i64))
        .collect();
    let valid = Raw::command(&valid_id, &create("after-junk"), false);
    records.push(record(&valid, &setup.commands, cases.len() as i64));

    let processor = setup.processor();
    let report = processor
        .handle(
            &lambda_event(records, &setup.brokers),
            Instant::now() + Duration::from_secs(120),
        )
        .await
        .expect("junk never fails the batch");
    assert_eq!(report.records, cases.len() + 1, "{report:?}");

    let responses = read_responses(&setup.brokers, &setup.responses, cases.len() + 1).await;
    let by_id = by_correlation(&responses);
    for (name, raw, mentions) in &cases {
        let key = String::from_utf8(raw.key.clone().unwrap()).unwrap();
        let got = by_id
            .get(&key)
            .unwrap_or_else(|| panic!("{name}: no response"));
        assert_eq!(got.len(), 1, "{name}");
        match got[0].parsed.error() {
            None => assert_eq!(*mentions, EXECUTED, "{name}: executed"),
            Some((code, message)) => {
                assert_eq!(code, ErrorCode::InvalidArgument, "{name}: {message}");
                assert!(message.contains(mentions), "{name}: {message}");
            }
        }
        let size = got[0].value.len()
            + got[0]
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        assert!(size <= SMALL_RESPONSE, "{name}: a {size}-byte response");
    }
    let refused = cases.iter().filter(|c| c.2 != EXECUTED).count();
    assert_eq!(report.refused, refused, "{report:?}");
    let answer = &by_id[&valid_id];
    assert!(answer[0].parsed.error().is_none(), "{:?}", answer[0].parsed);
}
