use std::collections::HashMap;

use aws_lambda_events::kafka::KafkaRecord;
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, TimeZone, Utc};
use evidentsource_cloudevents_kafka::{
    AttributesReader, AttributesWriter, BinaryMessage, Data, DecodeError, Event, LambdaRecordParts,
    decode, decode_lambda_record, decode_message, encode, ext,
};
use proptest::prelude::*;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};

const SOURCE: &str = "https://api.example.com/db/accounts";

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).unwrap()
}

/// 2024-01-15T10:30:00.123Z
const T0: i64 = 1_705_314_600_123;

fn event(id: &str, ty: &str, time_ms: i64, content_type: &str) -> Event {
    let mut e = Event::default();
    e.set_id(id);
    e.set_source(SOURCE);
    e.set_type(ty);
    e.set_time(Some(at(time_ms)));
    e.set_datacontenttype(Some(content_type));
    e
}

fn as_strings(message: &BinaryMessage) -> Vec<(&str, &str)> {
    message
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), std::str::from_utf8(v).unwrap()))
        .collect()
}

#[test]
fn golden_created() {
    let mut e = event(
        "550e8400-e29b-41d4-a716-446655440000",
        "com.evidentsource.database.created.v1",
        T0,
        "application/protobuf",
    );
    ext::set_revision(&mut e, 0);
    ext::set_basis(&mut e, 0);
    e.set_data_unchecked(Data::Binary(vec![0x0a, 0x08]));
    let m = encode(&e);
    assert_eq!(
        as_strings(&m),
        [
            ("ce_specversion", "1.0"),
            ("ce_id", "550e8400-e29b-41d4-a716-446655440000"),
            ("ce_source", SOURCE),
            ("ce_type", "com.evidentsource.database.created.v1"),
            ("ce_time", "2024-01-15T10:30:00.123Z"),
            ("ce_datacontenttype", "application/protobuf"),
            ("content-type", "application/protobuf"),
            ("ce_revision", "0"),
            ("ce_basis", "0"),
        ]
    );
    assert_eq!(m.value, [0x0a, 0x08]);
}

#[test]
fn golden_transacted() {
    let mut e = event(
        "7f3e8a1c-9876-5432-1fed-cba987654321",
        "com.evidentsource.batch.transacted.v1",
        1_705_314_605_456,
        "application/protobuf",
    );
    e.set_subject(Some("batch-550e8400-e29b-41d4-a716-446655440000"));
    // Set in the "wrong" order: the encoding fixes it.
    ext::set_basis(&mut e, 145);
    ext::set_revision(&mut e, 150);
    e.set_data_unchecked(Data::Binary(vec![1, 2, 3]));
    let m = encode(&e);
    assert_eq!(
        as_strings(&m),
        [
            ("ce_specversion", "1.0"),
            ("ce_id", "7f3e8a1c-9876-5432-1fed-cba987654321"),
            ("ce_source", SOURCE),
            ("ce_type", "com.evidentsource.batch.transacted.v1"),
            ("ce_time", "2024-01-15T10:30:05.456Z"),
            ("ce_datacontenttype", "application/protobuf"),
            ("content-type", "application/protobuf"),
            ("ce_subject", "batch-550e8400-e29b-41d4-a716-446655440000"),
            ("ce_revision", "150"),
            ("ce_basis", "145"),
        ]
    );
    assert_eq!(m.value, [1, 2, 3]);
}

#[test]
fn golden_deleted() {
    let e = event(
        "c4f6b2d8-1111-2222-3333-444455556666",
        "com.evidentsource.database.deleted.v1",
        1_705_316_400_789,
        "application/octet-stream",
    );
    let m = encode(&e);
    assert_eq!(
        as_strings(&m),
        [
            ("ce_specversion", "1.0"),
            ("ce_id", "c4f6b2d8-1111-2222-3333-444455556666"),
            ("ce_source", SOURCE),
            ("ce_type", "com.evidentsource.database.deleted.v1"),
            ("ce_time", "2024-01-15T11:00:00.789Z"),
            ("ce_datacontenttype", "application/octet-stream"),
            ("content-type", "application/octet-stream"),
        ]
    );
    assert!(m.value.is_empty());
    let back = decode(
        m.headers
            .iter()
            .map(|(k, v)| (k.as_str(), Some(v.as_slice()))),
        Some(&[]),
    )
    .unwrap();
    assert_eq!(back, e);
}

#[test]
fn time_is_truncated_to_milliseconds_in_utc() {
    let mut e = event("i", "t", 0, "text/plain");
    e.set_time(Some(Utc.timestamp_opt(1_705_314_600, 123_456_789).unwrap()));
    let m = encode(&e);
    assert_eq!(m.header("ce_time"), Some(&b"2024-01-15T10:30:00.123Z"[..]));
}

#[test]
fn encoding_is_deterministic_whatever_the_extension_order() {
    let mut a = event("i", "t", T0, "text/plain");
    let mut b = a.clone();
    for name in ["zeta", "alpha", "correlationid", "basis", "revision", "mid"] {
        a.set_extension(name, "1");
    }
    for name in ["mid", "revision", "zeta", "basis", "alpha", "correlationid"] {
        b.set_extension(name, "1");
    }
    let names: Vec<_> = encode(&a)
        .headers
        .into_iter()
        .map(|(k, _)| k)
        .skip(7)
        .collect();
    assert_eq!(
        names,
        [
            "ce_revision",
            "ce_basis",
            "ce_correlationid",
            "ce_alpha",
            "ce_mid",
            "ce_zeta"
        ]
    );
    assert_eq!(encode(&a), encode(&b));
}

fn rdkafka_message(m: &BinaryMessage, key: Option<&[u8]>) -> OwnedMessage {
    OwnedMessage::new(
        Some(m.value.clone()),
        key.map(<[u8]>::to_vec),
        "topic".into(),
        Timestamp::NotAvailable,
        0,
        0,
        Some(m.owned_headers()),
    )
}

fn lambda_record(headers: &[(String, Vec<u8>)], key: Option<&[u8]>, value: &[u8]) -> KafkaRecord {
    let mut r = KafkaRecord::default();
    r.topic = Some("topic".into());
    r.key = key.map(|k| STANDARD.encode(k));
    r.value = Some(STANDARD.encode(value));
    r.headers = headers
        .iter()
        .map(|(k, v)| HashMap::from([(k.clone(), v.iter().map(|b| *b as i8).collect())]))
        .collect();
    r
}

#[test]
fn lambda_shaped_record_decodes() {
    // The shape Lambda delivers, as JSON: base64 key/value, headers as
    // one-entry maps of signed bytes ("1.0" = [49, 46, 48]; 0xff = -1).
    let json = serde_json::json!({
        "topic": "evidentsource-async-commands",
        "partition": 0,
        "offset": 15,
        "timestamp": 1_545_084_650_987_i64,
        "timestampType": "CREATE_TIME",
        "key": STANDARD.encode("corr-1"),
        "value": STANDARD.encode([0xff, 0x00]),
        "headers": [
            {"ce_specversion": [49, 46, 48]},
            {"ce_id": [105, 100]},
            {"ce_source": [115, 114, 99]},
            {"ce_type": [116]},
            {"ce_correlationid": [99, 111, 114, 114, 45, 49]},
            {"content-type": [97, 47, 98]},
            {"traceparent": [-1, -2]}
        ]
    });
    let record: KafkaRecord = serde_json::from_value(json).unwrap();
    let (key, e) = decode_lambda_record(&record).unwrap();
    assert_eq!(key.as_deref(), Some(&b"corr-1"[..]));
    assert_eq!(e.id(), "id");
    assert_eq!(e.source(), "src");
    assert_eq!(e.ty(), "t");
    assert_eq!(e.datacontenttype(), Some("a/b"));
    assert_eq!(ext::correlation_id(&e), Some("corr-1"));
    assert_eq!(e.data(), Some(&Data::Binary(vec![0xff, 0x00])));
    assert_eq!(e.time(), None);
}

#[test]
fn lambda_record_bad_base64_names_the_field() {
    let mut r = lambda_record(&[], None, b"");
    r.key = Some("***".into());
    assert_eq!(
        LambdaRecordParts::from_record(&r).unwrap_err(),
        DecodeError::BadBase64 { field: "key" }
    );
    r.key = None;
    r.value = Some("%%".into());
    assert_eq!(
        decode_lambda_record(&r).unwrap_err(),
        DecodeError::BadBase64 { field: "value" }
    );
}

fn valid_headers() -> Vec<(String, Vec<u8>)> {
    [
        ("ce_specversion", "1.0"),
        ("ce_id", "i"),
        ("ce_source", "s"),
        ("ce_type", "t"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
    .collect()
}

fn decode_owned(headers: &[(String, Option<Vec<u8>>)]) -> Result<Event, DecodeError> {
    decode(
        headers.iter().map(|(k, v)| (k.as_str(), v.as_deref())),
        None,
    )
}

fn with(extra: &[(&str, Option<&[u8]>)]) -> Vec<(String, Option<Vec<u8>>)> {
    let mut h: Vec<_> = valid_headers()
        .into_iter()
        .map(|(k, v)| (k, Some(v)))
        .collect();
    for (k, v) in extra {
        h.push((k.to_string(), v.map(<[u8]>::to_vec)));
    }
    h
}

#[test]
fn errors_name_the_header() {
    for missing in ["ce_specversion", "ce_id", "ce_source", "ce_type"] {
        let h: Vec<_> = with(&[])
            .into_iter()
            .filter(|(k, _)| k != missing)
            .collect();
        assert_eq!(
            decode_owned(&h).unwrap_err(),
            DecodeError::MissingHeader { header: missing }
        );
    }
    type Extra<'a> = Vec<(&'a str, Option<&'a [u8]>)>;
    let cases: Vec<(Extra, &str)> = vec![
        (vec![("ce_subject", Some(b"\xff\xfe"))], "ce_subject"),
        (vec![("ce_revision", Some(b"-3"))], "ce_revision"),
        (vec![("ce_basis", Some(b"12a"))], "ce_basis"),
        (vec![("ce_time", Some(b"yesterday"))], "ce_time"),
        (vec![("ce_dataschema", Some(b"not a uri"))], "ce_dataschema"),
        (vec![("ce_subject", None)], "ce_subject"),
        (vec![("ce_id", Some(b"again"))], "ce_id"),
        (
            vec![("content-type", Some(b"a")), ("content-type", Some(b"a"))],
            "content-type",
        ),
        (
            vec![
                ("content-type", Some(b"a")),
                ("ce_datacontenttype", Some(b"b")),
            ],
            "content-type",
        ),
        (vec![("ce_Bad", Some(b"x"))], "ce_Bad"),
        (vec![("ce_", Some(b"x"))], "ce_"),
        (vec![("content-type", Some(b"\xc3\x28"))], "content-type"),
    ];
    for (extra, header) in cases {
        let err = decode_owned(&with(&extra)).unwrap_err();
        assert_eq!(err.header(), header, "{extra:?} → {err}");
        assert!(err.to_string().contains(header), "{err}");
    }
    let mut h = with(&[]);
    h[0].1 = Some(b"0.3".to_vec());
    assert_eq!(
        decode_owned(&h).unwrap_err(),
        DecodeError::UnsupportedSpecVersion {
            value: "0.3".into()
        }
    );
    let mut h = with(&[]);
    h[1].1 = Some(Vec::new());
    assert_eq!(decode_owned(&h).unwrap_err().header(), "ce_id");
}

#[test]
fn either_content_type_header_is_accepted() {
    for header in ["content-type", "ce_datacontenttype"] {
        let e = decode_owned(&with(&[(header, Some(b"application/json"))])).unwrap();
        assert_eq!(e.datacontenttype(), Some("application/json"), "{header}");
    }
    let both = with(&[
        ("content-type", Some(b"application/json")),
        ("ce_datacontenttype", Some(b"application/json")),
    ]);
    assert_eq!(
        decode_owned(&both).unwrap().datacontenttype(),
        Some("application/json")
    );
}

#[test]
fn foreign_headers_are_ignored() {
    let e = decode_owned(&with(&[("traceparent", Some(b"\xff")), ("CE_ID", None)])).unwrap();
    assert_eq!(e.id(), "i");
    assert_eq!(e.iter_extensions().count(), 0);
}

#[test]
fn string_and_json_data_are_written_as_bytes() {
    let mut e = event("i", "t", T0, "text/plain");
    e.set_data_unchecked(Data::String("héllo".into()));
    assert_eq!(encode(&e).value, "héllo".as_bytes());
    e.set_data("application/json", serde_json::json!({"a": 1}));
    assert_eq!(encode(&e).value, br#"{"a":1}"#);
}

prop_compose! {
    fn arb_event()(
        id in "[a-zA-Z0-9-]{1,36}",
        source in "(https://[a-z]{1,10}\\.example/)?[a-z]{1,8}(/[a-z]{1,8}){0,2}",
        ty in "[a-z.]{1,30}",
        subject in prop::option::of("[ -~]{0,20}"),
        time in prop::option::of(0i64..4_102_444_800_000),
        content_type in prop::option::of("[a-z]{1,8}/[a-z+.-]{1,12}"),
        schema in prop::option::of("https://schemas\\.example/[a-z]{1,8}"),
        extensions in prop::collection::hash_map("[a-z][a-z0-9]{0,9}", "[ -~]{0,16}", 0..4),
        revision in prop::option::of(any::<u64>()),
        basis in prop::option::of(any::<u64>()),
        data in prop::option::of(prop::collection::vec(any::<u8>(), 1..64)),
    ) -> Event {
        let mut e = Event::default();
        e.set_id(id);
        e.set_source(source);
        e.set_type(ty);
        e.set_subject(subject);
        e.set_time(time.map(at));
        e.set_datacontenttype(content_type);
        e.set_dataschema(schema.map(|s| url::Url::parse(&s).unwrap()));
        for (k, v) in extensions {
            if !matches!(k.as_str(), "specversion" | "id" | "source" | "type" | "time"
                | "subject" | "datacontenttype" | "dataschema" | "revision" | "basis") {
                e.set_extension(&k, v);
            }
        }
        if let Some(r) = revision { ext::set_revision(&mut e, r); }
        if let Some(b) = basis { ext::set_basis(&mut e, b); }
        if let Some(d) = data { e.set_data_unchecked(Data::Binary(d)); }
        e
    }
}

proptest! {
    #[test]
    fn round_trip_through_rdkafka_and_lambda_shapes(e in arb_event(), key in prop::option::of("[a-z0-9-]{1,20}")) {
        let m = encode(&e);
        let via_rdkafka = decode_message(&rdkafka_message(&m, key.as_deref().map(str::as_bytes))).unwrap();
        prop_assert_eq!(&via_rdkafka, &e);

        let record = lambda_record(&m.headers, key.as_deref().map(str::as_bytes), &m.value);
        let (k, via_lambda) = decode_lambda_record(&record).unwrap();
        prop_assert_eq!(k, key.map(String::into_bytes));
        prop_assert_eq!(&via_lambda, &e);
        prop_assert_eq!(encode(&via_lambda), m);
    }

    #[test]
    fn decoding_arbitrary_headers_never_panics(
        headers in prop::collection::vec(
            (prop_oneof![
                Just("ce_specversion".to_string()), Just("ce_id".to_string()),
                Just("ce_source".to_string()), Just("ce_type".to_string()),
                Just("ce_time".to_string()), Just("ce_revision".to_string()),
                Just("content-type".to_string()), "ce_[a-zA-Z_]{0,4}", "[a-z-]{1,6}",
            ], prop::option::of(prop::collection::vec(any::<u8>(), 0..12))),
            0..10),
        value in prop::option::of(prop::collection::vec(any::<u8>(), 0..8)),
    ) {
        let _ = decode(headers.iter().map(|(k, v)| (k.as_str(), v.as_deref())), value.as_deref());
        let with_valid: Vec<(String, Option<Vec<u8>>)> = valid_headers()
            .into_iter().map(|(k, v)| (k, Some(v))).chain(headers).collect();
        let _ = decode_owned(&with_valid);
    }
}

#[test]
fn owned_headers_carry_every_header() {
    use rdkafka::message::Headers;
    let mut e = event("i", "t", T0, "application/protobuf");
    ext::set_revision(&mut e, 7);
    let m = encode(&e);
    let owned: OwnedHeaders = m.owned_headers();
    let pairs: Vec<(String, Vec<u8>)> = owned
        .iter()
        .map(|Header { key, value }| (key.to_string(), value.unwrap().to_vec()))
        .collect();
    assert_eq!(pairs, m.headers);
}
