use evidentsource_cloudevents_kafka::decode;

use super::*;

fn ts(seconds: i64, millis: i32) -> Timestamp {
    Timestamp {
        seconds,
        nanos: millis * 1_000_000,
    }
}

fn created() -> DatabaseEvent {
    DatabaseEvent::Created(Database {
        name: "accounts".into(),
        created_at: Some(ts(1_705_314_600, 123)),
        basis: 0,
        revision: 0,
        revision_timestamp: Some(ts(1_705_314_600, 123)),
    })
}

fn transacted() -> DatabaseEvent {
    DatabaseEvent::Transacted(BatchSummary {
        id: "batch-1".into(),
        database: "accounts".into(),
        basis: 145,
        revision: 150,
        event_count: 5,
        recorded_time: Some(ts(1_705_314_605, 456)),
    })
}

fn deleted() -> DatabaseEvent {
    DatabaseEvent::Deleted {
        database: "accounts".into(),
        created_at: ts(1_705_314_600, 123),
        deleted_at: ts(1_705_316_400, 789),
    }
}

fn headers(e: &EncodedDatabaseEvent) -> Vec<(&str, String)> {
    e.message
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), String::from_utf8(v.clone()).unwrap()))
        .collect()
}

#[test]
fn contract_headers_key_and_body() {
    let base = "https://api.example.com/";
    let c = created().encode(base);
    assert_eq!(c.key, "accounts");
    assert_eq!(
        headers(&c),
        [
            ("ce_specversion", "1.0".to_string()),
            ("ce_id", created().id().to_string()),
            ("ce_source", "https://api.example.com/db/accounts".into()),
            ("ce_type", CREATED.into()),
            ("ce_time", "2024-01-15T10:30:00.123Z".into()),
            ("ce_datacontenttype", PROTOBUF.into()),
            ("content-type", PROTOBUF.into()),
            ("ce_revision", "0".into()),
            ("ce_basis", "0".into()),
        ]
    );
    let DatabaseEvent::Created(db) = created() else {
        unreachable!()
    };
    assert_eq!(c.message.value, db.encode_to_vec());

    let t = transacted().encode(base);
    assert_eq!(
        headers(&t),
        [
            ("ce_specversion", "1.0".to_string()),
            ("ce_id", transacted().id().to_string()),
            ("ce_source", "https://api.example.com/db/accounts".into()),
            ("ce_type", TRANSACTED.into()),
            ("ce_time", "2024-01-15T10:30:05.456Z".into()),
            ("ce_datacontenttype", PROTOBUF.into()),
            ("content-type", PROTOBUF.into()),
            ("ce_subject", "batch-1".into()),
            ("ce_revision", "150".into()),
            ("ce_basis", "145".into()),
        ]
    );

    let d = deleted().encode(base);
    assert_eq!(
        headers(&d),
        [
            ("ce_specversion", "1.0".to_string()),
            ("ce_id", deleted().id().to_string()),
            ("ce_source", "https://api.example.com/db/accounts".into()),
            ("ce_type", DELETED.into()),
            ("ce_time", "2024-01-15T11:00:00.789Z".into()),
            ("ce_datacontenttype", OCTET_STREAM.into()),
            ("content-type", OCTET_STREAM.into()),
        ]
    );
    assert!(d.message.value.is_empty());
}

#[test]
fn ids_are_deterministic_and_distinct() {
    assert_eq!(
        created().encode("b"),
        created().encode("b"),
        "byte-identical on retry"
    );
    let ids = [created().id(), transacted().id(), deleted().id()];
    assert!(ids.iter().all(|id| id.get_version_num() == 5));
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[1], ids[2]);
    // A re-created database's events get new ids.
    let DatabaseEvent::Created(mut again) = created() else {
        unreachable!()
    };
    again.created_at = Some(ts(1_705_400_000, 0));
    assert_ne!(DatabaseEvent::Created(again).id(), ids[0]);
}

#[test]
fn parse_round_trip() {
    for e in [created(), transacted(), deleted()] {
        let enc = e.encode("https://x");
        let decoded = decode(
            enc.message
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_slice()))),
            Some(&enc.message.value),
        )
        .unwrap();
        let r = ReceivedDatabaseEvent::parse(Some(enc.key.as_bytes()), &decoded).unwrap();
        assert_eq!(r.database, "accounts");
        assert_eq!(r.id, e.id().to_string());
        assert_eq!(r.event_type(), e.event_type());
        match (&e, &r.body) {
            (DatabaseEvent::Created(a), ReceivedBody::Created(b)) => assert_eq!(a, b),
            (DatabaseEvent::Transacted(a), ReceivedBody::Transacted(b)) => assert_eq!(a, b),
            (DatabaseEvent::Deleted { .. }, ReceivedBody::Deleted) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn parse_rejects_inconsistent_messages() {
    let mut event = transacted().to_cloudevent("https://x");
    assert!(ReceivedDatabaseEvent::parse(None, &event).is_err());
    assert!(ReceivedDatabaseEvent::parse(Some(b"other"), &event).is_err());
    ext::set_basis(&mut event, 144);
    let err = ReceivedDatabaseEvent::parse(Some(b"accounts"), &event).unwrap_err();
    assert!(
        matches!(err, InvalidDatabaseEvent::Inconsistent(_)),
        "{err}"
    );
    event.set_type("x");
    assert!(matches!(
        ReceivedDatabaseEvent::parse(Some(b"accounts"), &event),
        Err(InvalidDatabaseEvent::UnknownType(_))
    ));
}

fn any_timestamp() -> impl proptest::strategy::Strategy<Value = Timestamp> {
    use proptest::prelude::*;
    // Year 1970 to 9999 (RFC 3339's range), any nanosecond.
    (0i64..=253_402_300_799, 0i32..1_000_000_000)
        .prop_map(|(seconds, nanos)| Timestamp { seconds, nanos })
}

fn any_event() -> impl proptest::strategy::Strategy<Value = DatabaseEvent> {
    use proptest::prelude::*;
    let name = "[a-z][a-z0-9_-]{0,30}";
    prop_oneof![
        (name, proptest::option::of(any_timestamp()), any::<u64>()).prop_map(
            |(name, created_at, revision)| DatabaseEvent::Created(Database {
                name,
                created_at,
                basis: revision,
                revision,
                revision_timestamp: created_at,
            })
        ),
        (
            name,
            "[A-Za-z0-9-]{1,40}",
            0u64..u64::MAX / 2,
            1u32..,
            proptest::option::of(any_timestamp())
        )
            .prop_map(|(database, id, basis, count, recorded_time)| {
                DatabaseEvent::Transacted(BatchSummary {
                    id,
                    database,
                    basis,
                    revision: basis + u64::from(count),
                    event_count: count,
                    recorded_time,
                })
            }),
        (name, any_timestamp(), any_timestamp()).prop_map(|(database, created_at, deleted_at)| {
            DatabaseEvent::Deleted {
                database,
                created_at,
                deleted_at,
            }
        }),
    ]
}

proptest::proptest! {
    /// The publisher's direct path writes exactly what the generic binding
    /// writes for the same CloudEvent: the contract has one definition.
    #[test]
    fn direct_encoding_equals_the_generic_binding(
        event in any_event(),
        base in proptest::sample::select(vec!["https://api.example.com", "https://api.example.com/", "b"]),
    ) {
        let generic = evidentsource_cloudevents_kafka::encode(&event.to_cloudevent(base));
        let direct = event.encode(base);
        proptest::prop_assert_eq!(&direct.message, &generic);
        proptest::prop_assert_eq!(direct.key, event.database());
    }
}

/// GOLDEN VALUES: THESE MUST NEVER CHANGE.
///
/// Consumers de-duplicate on `ce_id`: a publisher of the next release that
/// re-sends an event after a retry, a redrive or a replay must give it the
/// id this release gave it. These literals were produced by this release's
/// code once (and checked against an independent UUID v5 computation); if
/// this test fails, the derivation changed and every consumer's
/// de-duplication breaks. Fix the code, never the literals.
struct Golden {
    event: DatabaseEvent,
    id: &'static str,
    headers: &'static [(&'static str, &'static [u8])],
    value_hex: &'static str,
}

fn golden() -> Vec<Golden> {
    let at = |seconds, nanos| Timestamp { seconds, nanos };
    vec![
        Golden {
            event: created(),
            id: "8b86bbbb-97fd-5706-978d-88be277d833d",
            headers: &[
                ("ce_specversion", b"1.0"),
                ("ce_id", b"8b86bbbb-97fd-5706-978d-88be277d833d"),
                ("ce_source", b"https://api.example.com/db/accounts"),
                ("ce_type", b"com.evidentsource.database.created.v1"),
                ("ce_time", b"2024-01-15T10:30:00.123Z"),
                ("ce_datacontenttype", b"application/protobuf"),
                ("content-type", b"application/protobuf"),
                ("ce_revision", b"0"),
                ("ce_basis", b"0"),
            ],
            value_hex: "0a086163636f756e7473120b08a89294ad0610c0a9d33a2a0b08a89294ad0610c0a9d33a",
        },
        Golden {
            event: DatabaseEvent::Created(Database {
                name: "orders-eu_2".into(),
                created_at: Some(at(1_700_000_000, 1)),
                basis: 0,
                revision: 0,
                revision_timestamp: Some(at(1_700_000_000, 1)),
            }),
            id: "149da8f0-6582-5a69-bc9a-530e43be8276",
            headers: &[
                ("ce_specversion", b"1.0"),
                ("ce_id", b"149da8f0-6582-5a69-bc9a-530e43be8276"),
                ("ce_source", b"https://api.example.com/db/orders-eu_2"),
                ("ce_type", b"com.evidentsource.database.created.v1"),
                ("ce_time", b"2023-11-14T22:13:20.000Z"),
                ("ce_datacontenttype", b"application/protobuf"),
                ("content-type", b"application/protobuf"),
                ("ce_revision", b"0"),
                ("ce_basis", b"0"),
            ],
            value_hex: "0a0b6f72646572732d65755f3212080880e2cfaa0610012a080880e2cfaa061001",
        },
        Golden {
            // No creation time (never written so, but the id is defined).
            event: DatabaseEvent::Created(Database {
                name: "x".into(),
                ..Database::default()
            }),
            id: "9c2f2d6a-6b2f-5a44-9912-a448e01b09f0",
            headers: &[
                ("ce_specversion", b"1.0"),
                ("ce_id", b"9c2f2d6a-6b2f-5a44-9912-a448e01b09f0"),
                ("ce_source", b"https://api.example.com/db/x"),
                ("ce_type", b"com.evidentsource.database.created.v1"),
                ("ce_datacontenttype", b"application/protobuf"),
                ("content-type", b"application/protobuf"),
                ("ce_revision", b"0"),
                ("ce_basis", b"0"),
            ],
            value_hex: "0a0178",
        },
        Golden {
            event: transacted(),
            id: "78b1762c-cdb1-5f03-b940-313fb373b13e",
            headers: &[
                ("ce_specversion", b"1.0"),
                ("ce_id", b"78b1762c-cdb1-5f03-b940-313fb373b13e"),
                ("ce_source", b"https://api.example.com/db/accounts"),
                ("ce_type", b"com.evidentsource.batch.transacted.v1"),
                ("ce_time", b"2024-01-15T10:30:05.456Z"),
                ("ce_datacontenttype", b"application/protobuf"),
                ("content-type", b"application/protobuf"),
                ("ce_subject", b"batch-1"),
                ("ce_revision", b"150"),
                ("ce_basis", b"145"),
            ],
            value_hex: "0a0762617463682d3112086163636f756e74731891012096012805320c08ad9294ad06108084b8d901",
        },
        Golden {
            // The same batch id at another revision is another event.
            event: DatabaseEvent::Transacted(BatchSummary {
                id: "batch-1".into(),
                database: "accounts".into(),
                basis: 150,
                revision: 151,
                event_count: 1,
                recorded_time: Some(ts(1_705_314_610, 0)),
            }),
            id: "4cea538c-36ee-5882-9dd4-030f67c0e2a7",
            headers: &[
                ("ce_specversion", b"1.0"),
                ("ce_id", b"4cea538c-36ee-5882-9dd4-030f67c0e2a7"),
                ("ce_source", b"https://api.example.com/db/accounts"),
                ("ce_type", b"com.evidentsource.batch.transacted.v1"),
                ("ce_time", b"2024-01-15T10:30:10.000Z"),
                ("ce_datacontenttype", b"application/protobuf"),
                ("content-type", b"application/protobuf"),
                ("ce_subject", b"batch-1"),
                ("ce_revision", b"151"),
                ("ce_basis", b"150"),
            ],
            value_hex: "0a0762617463682d3112086163636f756e74731896012097012801320608b29294ad06",
        },
        Golden {
            event: DatabaseEvent::Transacted(BatchSummary {
                id: "7f3e8a1c-9876-5432-1fed-cba987654321".into(),
                database: "orders-eu_2".into(),
                basis: 0,
                revision: 1,
                event_count: 1,
                recorded_time: Some(at(1_700_000_001, 999_999_999)),
            }),
            id: "d453c2f1-7bbd-58e6-9863-6a3c63c70c99",
            headers: &[
                ("ce_specversion", b"1.0"),
                ("ce_id", b"d453c2f1-7bbd-58e6-9863-6a3c63c70c99"),
                ("ce_source", b"https://api.example.com/db/orders-eu_2"),
                ("ce_type", b"com.evidentsource.batch.transacted.v1"),
                ("ce_time", b"2023-11-14T22:13:21.999Z"),
                ("ce_datacontenttype", b"application/protobuf"),
                ("content-type", b"application/protobuf"),
                ("ce_subject", b"7f3e8a1c-9876-5432-1fed-cba987654321"),
                ("ce_revision", b"1"),
                ("ce_basis", b"0"),
            ],
            value_hex: "0a2437663365386131632d393837362d353433322d316665642d636261393837363534333231120b6f72646572732d65755f3220012801320c0881e2cfaa0610ff93ebdc03",
        },
        Golden {
            event: deleted(),
            id: "be7f5d65-9599-5552-8285-82d1a4c2a6b9",
            headers: &[
                ("ce_specversion", b"1.0"),
                ("ce_id", b"be7f5d65-9599-5552-8285-82d1a4c2a6b9"),
                ("ce_source", b"https://api.example.com/db/accounts"),
                ("ce_type", b"com.evidentsource.database.deleted.v1"),
                ("ce_time", b"2024-01-15T11:00:00.789Z"),
                ("ce_datacontenttype", b"application/octet-stream"),
                ("content-type", b"application/octet-stream"),
            ],
            value_hex: "",
        },
        Golden {
            // The same database deleted again after being re-created.
            event: DatabaseEvent::Deleted {
                database: "accounts".into(),
                created_at: ts(1_705_400_000, 0),
                deleted_at: ts(1_705_500_000, 500),
            },
            id: "77064a30-ba64-53c4-b64f-4c0b92a28a0d",
            headers: &[
                ("ce_specversion", b"1.0"),
                ("ce_id", b"77064a30-ba64-53c4-b64f-4c0b92a28a0d"),
                ("ce_source", b"https://api.example.com/db/accounts"),
                ("ce_type", b"com.evidentsource.database.deleted.v1"),
                ("ce_time", b"2024-01-17T14:00:00.500Z"),
                ("ce_datacontenttype", b"application/octet-stream"),
                ("content-type", b"application/octet-stream"),
            ],
            value_hex: "",
        },
        Golden {
            event: DatabaseEvent::Deleted {
                database: "orders-eu_2".into(),
                created_at: at(1_700_000_000, 1),
                deleted_at: at(1_700_000_002, 0),
            },
            id: "4606b1f5-62c5-541a-8724-c4773075e563",
            headers: &[
                ("ce_specversion", b"1.0"),
                ("ce_id", b"4606b1f5-62c5-541a-8724-c4773075e563"),
                ("ce_source", b"https://api.example.com/db/orders-eu_2"),
                ("ce_type", b"com.evidentsource.database.deleted.v1"),
                ("ce_time", b"2023-11-14T22:13:22.000Z"),
                ("ce_datacontenttype", b"application/octet-stream"),
                ("content-type", b"application/octet-stream"),
            ],
            value_hex: "",
        },
    ]
}

#[test]
fn golden_ids_and_bytes_never_change() {
    for g in golden() {
        let what = format!("{} {}", g.event.event_type(), g.event.database());
        assert_eq!(g.event.id().to_string(), g.id, "ce_id of {what}");
        let encoded = g.event.encode("https://api.example.com");
        assert_eq!(encoded.key, g.event.database(), "key of {what}");
        let expected: Vec<(String, Vec<u8>)> = g
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect();
        assert_eq!(encoded.message.headers, expected, "headers of {what}");
        let value: String = encoded
            .message
            .value
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(value, g.value_hex, "value of {what}");
    }
}
