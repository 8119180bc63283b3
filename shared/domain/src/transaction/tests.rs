use evidentsource_proto::{
    AppendCondition as PCondition, EventSelector, TransactRequest, append_condition,
    cloudevents::{
        CloudEvent,
        cloud_event::{CloudEventAttributeValue, Data, cloud_event_attribute_value::Attr},
    },
    event_selector,
};

use super::*;
use crate::ErrorCode;

fn event(id: &str, source: &str) -> CloudEvent {
    CloudEvent {
        id: id.into(),
        source: source.into(),
        spec_version: "1.0".into(),
        r#type: "com.example.placed".into(),
        attributes: Default::default(),
        data: Some(Data::TextData("{}".into())),
    }
}

fn with_attr(mut e: CloudEvent, name: &str, attr: Attr) -> CloudEvent {
    e.attributes
        .insert(name.into(), CloudEventAttributeValue { attr: Some(attr) });
    e
}

fn request(events: Vec<CloudEvent>) -> TransactRequest {
    TransactRequest {
        database_name: "accounts".into(),
        events,
        conditions: vec![],
        transaction_id: "tx-1".into(),
    }
}

fn field_of(r: TransactRequest) -> String {
    let e = Transaction::from_request(r, &Limits::default()).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    e.field.unwrap_or_default()
}

#[test]
fn valid_request() {
    let e = with_attr(
        event("1", "https://x/orders"),
        "subject",
        Attr::CeString("o-1".into()),
    );
    let mut r = request(vec![e, event("2", "/customers")]);
    r.conditions.push(PCondition {
        selector: Some(EventSelector {
            selector: Some(event_selector::Selector::StreamEquals("orders".into())),
        }),
        bound: Some(append_condition::Bound::Max(0)),
    });
    let t = Transaction::from_request(r.clone(), &Limits::default()).unwrap();
    assert_eq!(t.to_request(), r);
    assert_eq!(t.database.as_str(), "accounts");
    assert_eq!(t.transaction_id.as_deref(), Some("tx-1"));
    assert_eq!(t.facts[0].stream, "orders");
    assert_eq!(t.facts[0].subject.as_deref(), Some("o-1"));
    assert_eq!(t.facts[1].stream, "customers");
    assert_eq!(t.facts[1].subject, None);
    assert_eq!(t.conditions.len(), 1);
}

#[test]
fn errors_name_the_field() {
    let mut r = request(vec![event("1", "/orders")]);
    r.database_name = "9".into();
    assert_eq!(field_of(r), "database_name");

    assert_eq!(field_of(request(vec![])), "events");

    let mut e = event("", "/orders");
    assert_eq!(
        field_of(request(vec![event("1", "/o1"), e.clone()])),
        "events[1].id"
    );
    e.id = "x".into();
    e.source = "https://x/".into();
    assert_eq!(field_of(request(vec![e.clone()])), "events[0].source");
    e.source = "/orders".into();
    e.spec_version = "0.3".into();
    assert_eq!(field_of(request(vec![e.clone()])), "events[0].specversion");
    e.spec_version = "1.0".into();
    e.r#type = String::new();
    assert_eq!(field_of(request(vec![e])), "events[0].type");

    let dup = request(vec![event("1", "/orders"), event("1", "/a/orders")]);
    assert_eq!(field_of(dup), "events[1].id");
    // The same id in another stream is fine.
    let ok = request(vec![event("1", "/orders"), event("1", "/payments")]);
    assert!(Transaction::from_request(ok, &Limits::default()).is_ok());

    let bad_subject = with_attr(event("1", "/orders"), "subject", Attr::CeInteger(3));
    assert_eq!(field_of(request(vec![bad_subject])), "events[0].subject");
    let reserved = with_attr(
        event("1", "/orders"),
        "revision",
        Attr::CeString("3".into()),
    );
    assert_eq!(field_of(request(vec![reserved])), "events[0].revision");
    let bad_name = with_attr(event("1", "/orders"), "Bad", Attr::CeString("x".into()));
    assert_eq!(field_of(request(vec![bad_name])), "events[0].Bad");

    let mut r = request(vec![event("1", "/orders")]);
    r.transaction_id = "x".repeat(129);
    assert_eq!(field_of(r), "transaction_id");

    let mut r = request(vec![event("1", "/orders")]);
    r.conditions.push(PCondition {
        selector: None,
        bound: Some(append_condition::Bound::Min(1)),
    });
    assert_eq!(field_of(r), "conditions[0].selector");
}

#[test]
fn limits_are_enforced_and_named() {
    let limits = Limits::default();
    let many: Vec<_> = (0..=limits.max_events)
        .map(|i| event(&i.to_string(), "/st"))
        .collect();
    let err = Transaction::from_request(request(many), &limits).unwrap_err();
    assert!(
        err.message.contains("limit of 1000 events"),
        "{}",
        err.message
    );

    // 1 MiB of data is accepted: 8 events of 128 KiB.
    let big = |i: usize, n: usize| {
        let mut e = event(&i.to_string(), "/st");
        e.data = Some(Data::BinaryData(vec![7; n]));
        e
    };
    let ok: Vec<_> = (0..8).map(|i| big(i, 128 * 1024)).collect();
    Transaction::from_request(request(ok), &limits).unwrap();
    let over: Vec<_> = (0..9).map(|i| big(i, 128 * 1024)).collect();
    let err = Transaction::from_request(request(over), &limits).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("events"));
    assert!(
        err.message.contains("limit of 1048576 bytes"),
        "{}",
        err.message
    );

    let err = Transaction::from_request(request(vec![big(0, 300 * 1024)]), &limits).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("events[0]"));
    assert!(err.message.starts_with("events[0]: is "), "{}", err.message);

    let mut r = request(vec![event("1", "/st")]);
    r.conditions = vec![
        PCondition {
            selector: Some(EventSelector {
                selector: Some(event_selector::Selector::StreamEquals("st".into())),
            }),
            bound: Some(append_condition::Bound::Max(0)),
        };
        33
    ];
    assert_eq!(field_of(r), "conditions");
}

#[test]
fn times_and_schemas_must_be_writable_back() {
    let ts = |seconds: i64, nanos: i32| {
        Attr::CeTimestamp(evidentsource_proto::Timestamp { seconds, nanos })
    };
    let uri = |s: &str| Attr::CeUri(s.into());
    for (name, attr, accepted) in [
        ("time", ts(0, 0), true),
        ("time", ts(-62_135_596_800, 0), true), // 0001-01-01
        ("time", ts(253_402_300_799, 999_999_999), true), // 9999-12-31
        ("time", ts(-62_135_596_801, 0), false), // year 0
        ("time", ts(253_402_300_800, 0), false), // year 10000
        ("time", ts(1 << 62, 0), false),
        ("time", ts(0, -1), false),
        ("time", ts(0, 1_000_000_000), false),
        (
            "dataschema",
            uri("https://schemas.example.com/order.json"),
            true,
        ),
        ("dataschema", uri("urn:example:order"), true),
        ("dataschema", Attr::CeString("https://x/y".into()), true),
        ("dataschema", uri("order.json"), false),
        ("dataschema", uri("/schemas/order"), false),
        ("dataschema", uri("https://x/a b"), false),
        ("dataschema", uri("1http://x"), false),
        ("dataschema", uri("https:"), false),
        ("dataschema", uri(""), false),
    ] {
        let e = with_attr(event("1", "https://x/orders"), name, attr.clone());
        let got = Transaction::from_request(request(vec![e]), &Limits::default());
        assert_eq!(got.is_ok(), accepted, "{name} {attr:?}: {got:?}");
        if let Err(e) = got {
            assert_eq!(
                e.field.as_deref(),
                Some(&*format!("events[0].{name}")),
                "{e:?}"
            );
            assert!(
                e.message.starts_with(&format!("events[0].{name}: ")),
                "{e:?}"
            );
        }
    }
}

#[test]
fn proto_data_is_refused_rather_than_stored_without_its_type() {
    let mut e = event("1", "https://x/orders");
    e.data = Some(Data::ProtoData(pbjson_types::Any {
        type_url: "type.googleapis.com/shop.Order".into(),
        value: vec![8, 1].into(),
    }));
    assert_eq!(field_of(request(vec![e])), "events[0].proto_data");
}
