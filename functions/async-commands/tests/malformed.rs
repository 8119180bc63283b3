//! Malformed commands, each one different: every one is answered with one
//! INVALID_ARGUMENT response (keyed by its correlation id, or by its
//! coordinates when it has none) and the handler succeeds.

mod common;

use std::time::Duration;

use common::*;
use evidentsource_commands::CommandRequest;
use evidentsource_local_servers::unique_name;
use evidentsource_proto::{
    AppendCondition, CreateDatabaseRequest, DeleteDatabaseRequest, ErrorCode, EventSelector,
    RevisionRange, TransactRequest, append_condition,
    cloudevents::{CloudEvent, cloud_event::Data},
    event_selector,
};
use tokio::time::Instant;

fn create(name: &str) -> CommandRequest {
    CommandRequest::CreateDatabase(CreateDatabaseRequest {
        database_name: name.into(),
    })
}

fn delete(name: &str) -> CommandRequest {
    CommandRequest::DeleteDatabase(DeleteDatabaseRequest {
        database_name: name.into(),
    })
}

fn event(id: &str) -> CloudEvent {
    CloudEvent {
        id: id.into(),
        source: "https://example.com/orders".into(),
        spec_version: "1.0".into(),
        r#type: "placed".into(),
        attributes: Default::default(),
        data: Some(Data::TextData("{}".into())),
    }
}

fn tx(edit: impl FnOnce(&mut TransactRequest)) -> CommandRequest {
    let mut request = TransactRequest {
        database_name: "shop".into(),
        events: vec![event("1")],
        conditions: vec![],
        transaction_id: String::new(),
    };
    edit(&mut request);
    CommandRequest::Transact(request)
}

fn condition(
    selector: Option<event_selector::Selector>,
    bound: Option<append_condition::Bound>,
) -> AppendCondition {
    AppendCondition {
        selector: selector.map(|s| EventSelector { selector: Some(s) }),
        bound,
    }
}

fn orders() -> Option<event_selector::Selector> {
    Some(event_selector::Selector::StreamEquals("orders".into()))
}

/// How the response is keyed.
#[derive(Debug, Clone)]
enum Keyed {
    /// By the correlation id the case was built with.
    Own,
    /// By this id (the key, when the header is unusable, or the header).
    As(String),
    /// By the record's coordinates.
    Coordinates,
}

struct Case {
    name: &'static str,
    raw: Raw,
    id: String,
    keyed: Keyed,
    /// Text the error message must contain (the field at fault).
    mentions: &'static str,
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add =
        |name: &'static str, build: &dyn Fn(&str) -> Raw, keyed: Keyed, mentions: &'static str| {
            let id = unique_name(&format!("bad-{}", cases.len()));
            cases.push(Case {
                name,
                raw: build(&id).on(0),
                id,
                keyed,
                mentions,
            });
        };
    let ok = |id: &str| Raw::command(id, &create("shop"), false);
    let json = |id: &str, value: &str| {
        let mut raw = Raw::command(id, &create("shop"), true);
        raw.value = Some(value.as_bytes().to_vec());
        raw
    };
    let typed = |id: &str, ty: &str, value: &[u8]| {
        let mut raw = ok(id).set_header("ce_type", Some(ty.as_bytes()));
        raw.value = Some(value.to_vec());
        raw
    };
    use Keyed::*;

    // CloudEvents headers
    add(
        "no specversion",
        &|id| ok(id).without_header("ce_specversion"),
        Own,
        "ce_specversion",
    );
    add(
        "specversion 0.3",
        &|id| ok(id).set_header("ce_specversion", Some(b"0.3")),
        Own,
        "ce_specversion",
    );
    add(
        "specversion 2.0",
        &|id| ok(id).set_header("ce_specversion", Some(b"2.0")),
        Own,
        "ce_specversion",
    );
    add(
        "null specversion",
        &|id| ok(id).set_header("ce_specversion", None),
        Own,
        "ce_specversion",
    );
    add("no id", &|id| ok(id).without_header("ce_id"), Own, "ce_id");
    add(
        "empty id",
        &|id| ok(id).set_header("ce_id", Some(b"")),
        Own,
        "ce_id",
    );
    add(
        "no source",
        &|id| ok(id).without_header("ce_source"),
        Own,
        "ce_source",
    );
    add(
        "empty source",
        &|id| ok(id).set_header("ce_source", Some(b"")),
        Own,
        "ce_source",
    );
    add(
        "no type",
        &|id| ok(id).without_header("ce_type"),
        Own,
        "ce_type",
    );
    add(
        "empty type",
        &|id| ok(id).set_header("ce_type", Some(b"")),
        Own,
        "ce_type",
    );
    add(
        "unknown type",
        &|id| ok(id).set_header("ce_type", Some(b"com.example.order")),
        Own,
        "ce_type",
    );
    add(
        "future version",
        &|id| {
            ok(id).set_header(
                "ce_type",
                Some(b"com.evidentsource.command.create-database.v2"),
            )
        },
        Own,
        "ce_type",
    );
    add(
        "database event as command",
        &|id| ok(id).set_header("ce_type", Some(b"com.evidentsource.database.created.v1")),
        Own,
        "ce_type",
    );
    add(
        "type not utf-8",
        &|id| ok(id).set_header("ce_type", Some(&[0xff, 0xfe])),
        Own,
        "ce_type",
    );
    add(
        "duplicate type",
        &|id| {
            let mut raw = ok(id);
            raw.headers
                .push(("ce_type".into(), Some(b"again".to_vec())));
            raw
        },
        Own,
        "ce_type",
    );
    add(
        "bad time",
        &|id| ok(id).set_header("ce_time", Some(b"yesterday")),
        Own,
        "ce_time",
    );
    add(
        "text/plain",
        &|id| {
            ok(id)
                .set_header("content-type", Some(b"text/plain"))
                .set_header("ce_datacontenttype", Some(b"text/plain"))
        },
        Own,
        "ce_datacontenttype",
    );
    add(
        "xml",
        &|id| {
            ok(id)
                .set_header("content-type", Some(b"application/xml"))
                .set_header("ce_datacontenttype", Some(b"application/xml"))
        },
        Own,
        "ce_datacontenttype",
    );

    // Values
    add(
        "create: not protobuf",
        &|id| typed(id, evidentsource_commands::CREATE_DATABASE, &[0xff; 3]),
        Own,
        "value",
    );
    add(
        "transact: not protobuf",
        &|id| typed(id, evidentsource_commands::TRANSACT, &[0x0a, 0x05, 0x61]),
        Own,
        "value",
    );
    add(
        "delete: not protobuf",
        &|id| typed(id, evidentsource_commands::DELETE_DATABASE, &[0x12]),
        Own,
        "value",
    );
    add("json: truncated", &|id| json(id, "{"), Own, "value");
    add("json: array", &|id| json(id, "[]"), Own, "value");
    add("json: null", &|id| json(id, "null"), Own, "value");
    add(
        "json: number as name",
        &|id| json(id, r#"{"databaseName": 7}"#),
        Own,
        "databaseName",
    );
    add("json: empty", &|id| json(id, ""), Own, "value");
    add(
        "json: transact data of the wrong type",
        &|id| {
            let mut raw = json(
                id,
                r#"{"databaseName":"shop","events":[{"id":"1","source":"/a","specVersion":"1.0","type":"t","textData":5}]}"#,
            );
            raw = raw.set_header("ce_type", Some(evidentsource_commands::TRANSACT.as_bytes()));
            raw
        },
        Own,
        "textData",
    );
    add(
        "null value",
        &|id| {
            let mut raw = ok(id);
            raw.value = None;
            raw
        },
        Own,
        "database_name",
    );

    // Names
    for (label, name) in [
        ("create: empty name", ""),
        ("create: leading digit", "1shop"),
        ("create: one character", "s"),
        ("create: space", "my shop"),
        ("create: too long", "x".repeat(129).leak() as &str),
        ("create: slash", "shop/eu"),
        ("create: non-ascii", "café"),
        ("create: leading dash", "-shop"),
    ] {
        add(
            label,
            &move |id| Raw::command(id, &create(name), false),
            Own,
            "database_name",
        );
    }
    for (label, name) in [
        ("delete: empty name", ""),
        ("delete: leading digit", "9shop"),
        ("delete: space", "bad name"),
        ("delete: too long", "y".repeat(200).leak() as &str),
    ] {
        add(
            label,
            &move |id| Raw::command(id, &delete(name), true),
            Own,
            "database_name",
        );
    }

    // Transactions
    let transact_cases: Vec<(&'static str, CommandRequest, &'static str)> = vec![
        ("no events", tx(|r| r.events.clear()), "events"),
        (
            "event without id",
            tx(|r| r.events[0].id.clear()),
            "events[0].id",
        ),
        (
            "event without source",
            tx(|r| r.events[0].source.clear()),
            "events[0].source",
        ),
        (
            "event stream invalid",
            tx(|r| r.events[0].source = "https://x/1bad".into()),
            "events[0].source",
        ),
        (
            "event specversion",
            tx(|r| r.events[0].spec_version = "0.3".into()),
            "events[0].specversion",
        ),
        (
            "event without type",
            tx(|r| r.events[0].r#type.clear()),
            "events[0].type",
        ),
        (
            "duplicate event id",
            tx(|r| r.events.push(event("1"))),
            "events[1].id",
        ),
        (
            "too many events",
            tx(|r| r.events = (0..1001).map(|i| event(&i.to_string())).collect()),
            "events",
        ),
        (
            "transaction id too long",
            tx(|r| r.transaction_id = "t".repeat(129)),
            "transaction_id",
        ),
        (
            "transaction id control",
            tx(|r| r.transaction_id = "a\nb".into()),
            "transaction_id",
        ),
        (
            "condition without selector",
            tx(|r| {
                r.conditions
                    .push(condition(None, Some(append_condition::Bound::Max(0))))
            }),
            "conditions[0]",
        ),
        (
            "condition without bound",
            tx(|r| r.conditions.push(condition(orders(), None))),
            "conditions[0]",
        ),
        (
            "range upside down",
            tx(|r| {
                r.conditions.push(condition(
                    orders(),
                    Some(append_condition::Bound::Range(RevisionRange {
                        min: 5,
                        max: 2,
                    })),
                ))
            }),
            "conditions[0]",
        ),
        (
            "empty stream selector",
            tx(|r| {
                r.conditions.push(condition(
                    Some(event_selector::Selector::StreamEquals(String::new())),
                    Some(append_condition::Bound::Max(0)),
                ))
            }),
            "conditions[0]",
        ),
        (
            "empty and",
            tx(|r| {
                r.conditions.push(condition(
                    Some(event_selector::Selector::And(Default::default())),
                    Some(append_condition::Bound::Max(0)),
                ))
            }),
            "conditions[0]",
        ),
        (
            "transact: invalid database",
            tx(|r| r.database_name = "1x".into()),
            "database_name",
        ),
        (
            "transact: no database",
            tx(|r| r.database_name.clear()),
            "database_name",
        ),
    ];
    for (label, request, mentions) in transact_cases {
        add(
            label,
            &move |id| Raw::command(id, &request, false),
            Own,
            mentions,
        );
    }

    // Correlation ids
    add(
        "key differs from header",
        &|id| {
            let mut raw = ok(id);
            raw.key = Some(b"another-id".to_vec());
            raw
        },
        Own,
        "key",
    );
    add(
        "empty header, key used",
        &|id| ok(id).set_header("ce_correlationid", Some(b"")),
        Own,
        "ce_correlationid",
    );
    add(
        "header not utf-8, key used",
        &|id| ok(id).set_header("ce_correlationid", Some(&[0xc3, 0x28])),
        Own,
        "ce_correlationid",
    );
    add(
        "header too long, no key",
        &|id| {
            let mut raw = ok(id).set_header("ce_correlationid", Some("z".repeat(300).as_bytes()));
            raw.key = None;
            raw
        },
        Coordinates,
        "ce_correlationid",
    );
    add(
        "header with a newline, no key",
        &|id| {
            let mut raw = ok(id).set_header("ce_correlationid", Some(b"a\nb"));
            raw.key = None;
            raw
        },
        Coordinates,
        "ce_correlationid",
    );
    add(
        "no header, no key",
        &|id| {
            let mut raw = ok(id).without_header("ce_correlationid");
            raw.key = None;
            raw
        },
        Coordinates,
        "ce_correlationid",
    );
    add(
        "no header, no key, no headers at all",
        &|_| Raw {
            value: Some(b"hello".to_vec()),
            ..Raw::default()
        },
        Coordinates,
        "ce_correlationid",
    );
    add(
        "key only, bad value",
        &|id| {
            let mut raw = typed(id, evidentsource_commands::CREATE_DATABASE, &[0xff])
                .without_header("ce_correlationid");
            raw.key = Some(format!("{id}-key").into_bytes());
            raw
        },
        As(String::new()),
        "value",
    );
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_command_gets_one_invalid_argument_response() {
    let setup = Setup::new().await;
    let mut cases = cases();
    for case in &mut cases {
        if let Keyed::As(_) = case.keyed {
            case.keyed = Keyed::As(format!("{}-key", case.id));
        }
    }
    let raws: Vec<Raw> = cases.iter().map(|c| c.raw.clone()).collect();
    let placed = produce(&setup.brokers, &setup.commands, &raws).await;
    let mut records = read_records(&setup.brokers, &setup.commands, raws.len()).await;
    records.sort_by_key(|r| (r.partition, r.offset));

    // Two records only Lambda itself could have mangled: bad base64.
    let mut bad_value = records[0].clone();
    bad_value.offset = 1_000_000;
    bad_value.key = None;
    bad_value.value = Some("not base64!".into());
    bad_value.headers = vec![
        [(
            "ce_correlationid".to_owned(),
            b"b64-value".iter().map(|b| *b as i8).collect(),
        )]
        .into(),
    ];
    let mut bad_key = bad_value.clone();
    bad_key.offset = 1_000_001;
    bad_key.value = records[0].value.clone();
    bad_key.key = Some("%%%".into());
    bad_key.headers = vec![
        [(
            "ce_correlationid".to_owned(),
            b"b64-key".iter().map(|b| *b as i8).collect(),
        )]
        .into(),
    ];
    records.push(bad_value);
    records.push(bad_key);
    let total = records.len();
    assert!(total >= 50, "{total} cases");

    let event = lambda_event(records, &setup.brokers);
    let processor = setup.processor();
    let report = processor
        .handle(&event, Instant::now() + Duration::from_secs(120))
        .await
        .expect("bad input never fails the batch");
    assert_eq!(report.records, total);
    assert_eq!(report.refused, total);

    let responses = read_responses(&setup.brokers, &setup.responses, total).await;
    let by_id = by_correlation(&responses);
    let mut expected: Vec<(String, &str, &str)> = cases
        .iter()
        .zip(&placed)
        .map(|(case, (partition, offset))| {
            let key = match &case.keyed {
                Keyed::Own => case.id.clone(),
                Keyed::As(id) => id.clone(),
                Keyed::Coordinates => format!("{}-{partition}-{offset}", setup.commands),
            };
            (key, case.name, case.mentions)
        })
        .collect();
    expected.push(("b64-value".into(), "value not base64", "value"));
    expected.push(("b64-key".into(), "key not base64", "key"));
    let mut distinct = std::collections::HashSet::new();
    for (key, name, mentions) in &expected {
        let got = by_id
            .get(key)
            .unwrap_or_else(|| panic!("{name}: no response keyed {key:?}"));
        assert_eq!(got.len(), 1, "{name}");
        let (code, message) = got[0]
            .parsed
            .error()
            .unwrap_or_else(|| panic!("{name}: succeeded"));
        assert_eq!(code, ErrorCode::InvalidArgument, "{name}: {message}");
        assert!(
            message.contains(mentions),
            "{name}: {message:?} should name {mentions}"
        );
        assert_eq!(got[0].key, key.as_bytes(), "{name}");
        distinct.insert(message.to_owned());
    }
    assert!(
        distinct.len() > 40,
        "messages tell the cases apart: {}",
        distinct.len()
    );

    // Delivered again, every refusal is re-published byte for byte.
    let again = processor
        .handle(&event, Instant::now() + Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!((again.replayed, again.executed), (total, 0));
    let all = read_responses(&setup.brokers, &setup.responses, 2 * total).await;
    for (key, copies) in by_correlation(&all) {
        assert_eq!(copies.len(), 2, "{key}");
        assert_eq!(copies[0].raw(), copies[1].raw(), "{key}");
    }
}
