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
