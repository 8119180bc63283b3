//! Golden bytes, written by hand from the field numbers in `proto/`, decode to
//! the expected values and are exactly what prost encodes. A renumbered or
//! retyped field fails here before it reaches a consumer.

use evidentsource_proto::{
    AppendCondition, BatchSummary, CommandError, CommandResponse, CreateDatabaseRequest, Database,
    DeleteDatabaseRequest, ErrorCode, EventSelector, EventSelectorList, Message, RevisionRange,
    Timestamp, TransactRequest, append_condition, cloudevents, command_response, event_selector,
};

/// 2024-01-15T10:30:00.123Z
fn ts1() -> Timestamp {
    Timestamp {
        seconds: 1_705_314_600,
        nanos: 123_000_000,
    }
}

/// 2024-01-15T10:30:05.456Z
fn ts2() -> Timestamp {
    Timestamp {
        seconds: 1_705_314_605,
        nanos: 456_000_000,
    }
}

#[rustfmt::skip]
const TS1: &[u8] = &[
    0x08, 0xa8, 0x92, 0x94, 0xad, 0x06, // seconds (1) varint 1705314600
    0x10, 0xc0, 0xa9, 0xd3, 0x3a,       // nanos (2) varint 123000000
];
#[rustfmt::skip]
const TS2: &[u8] = &[
    0x08, 0xad, 0x92, 0x94, 0xad, 0x06, // seconds (1) varint 1705314605
    0x10, 0x80, 0x84, 0xb8, 0xd9, 0x01, // nanos (2) varint 456000000
];

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn assert_golden<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8], expected: &M) {
    let decoded = M::decode(bytes).expect("golden bytes decode");
    assert_eq!(&decoded, expected);
    assert_eq!(
        expected.encode_to_vec(),
        bytes,
        "prost encodes the golden bytes"
    );
}

#[test]
#[rustfmt::skip]
fn database() {
    let bytes = concat(&[
        &[0x0a, 0x08], b"accounts", // name (1) LEN
        &[0x12, 0x0b], TS1,         // created_at (2) LEN
        &[0x18, 0x91, 0x01],        // basis (3) varint 145
        &[0x20, 0x96, 0x01],        // revision (4) varint 150
        &[0x2a, 0x0c], TS2,         // revision_timestamp (5) LEN
    ]);
    let expected = Database {
        name: "accounts".into(),
        created_at: Some(ts1()),
        basis: 145,
        revision: 150,
        revision_timestamp: Some(ts2()),
    };
    assert_golden(&bytes, &expected);
}

#[test]
#[rustfmt::skip]
fn batch_summary() {
    let bytes = concat(&[
        &[0x0a, 0x07], b"batch-1",  // id (1) LEN
        &[0x12, 0x08], b"accounts", // database (2) LEN
        &[0x18, 0x91, 0x01],        // basis (3) varint 145
        &[0x20, 0x96, 0x01],        // revision (4) varint 150
        &[0x28, 0x05],              // event_count (5) varint 5
        &[0x32, 0x0c], TS2,         // recorded_time (6) LEN
    ]);
    let expected = BatchSummary {
        id: "batch-1".into(),
        database: "accounts".into(),
        basis: 145,
        revision: 150,
        event_count: 5,
        recorded_time: Some(ts2()),
    };
    assert_golden(&bytes, &expected);
}

#[test]
#[rustfmt::skip]
fn create_and_delete_requests() {
    let bytes = concat(&[&[0x0a, 0x08], b"accounts"]); // database_name (1) LEN
    assert_golden(&bytes, &CreateDatabaseRequest { database_name: "accounts".into() });
    assert_golden(&bytes, &DeleteDatabaseRequest { database_name: "accounts".into() });
}

fn sample_cloudevent() -> cloudevents::CloudEvent {
    use cloudevents::cloud_event::{CloudEventAttributeValue, cloud_event_attribute_value::Attr};
    cloudevents::CloudEvent {
        id: "e1".into(),
        source: "s/orders".into(),
        spec_version: "1.0".into(),
        r#type: "t".into(),
        attributes: [(
            "subject".to_string(),
            CloudEventAttributeValue {
                attr: Some(Attr::CeString("o-1".into())),
            },
        )]
        .into(),
        data: Some(cloudevents::cloud_event::Data::TextData("hi".into())),
    }
}

#[rustfmt::skip]
fn sample_cloudevent_bytes() -> Vec<u8> {
    concat(&[
        &[0x0a, 0x02], b"e1",       // id (1)
        &[0x12, 0x08], b"s/orders", // source (2)
        &[0x1a, 0x03], b"1.0",      // spec_version (3)
        &[0x22, 0x01], b"t",        // type (4)
        &[0x2a, 0x10],              // attributes (5): map entry of 16 bytes
        &[0x0a, 0x07], b"subject",  //   key (1)
        &[0x12, 0x05],              //   value (2): CloudEventAttributeValue
        &[0x1a, 0x03], b"o-1",      //     ce_string (3)
        &[0x3a, 0x02], b"hi",       // text_data (7)
    ])
}

#[test]
#[rustfmt::skip]
fn cloudevent_protobuf_format() {
    let bytes = sample_cloudevent_bytes();
    assert_eq!(bytes.len(), 44);
    assert_golden(&bytes, &sample_cloudevent());

    // binary_data (6) and proto_data (8) sit in the same oneof.
    let binary = concat(&[&[0x0a, 0x01], b"x", &[0x32, 0x02, 0xff, 0x00]]);
    let decoded = cloudevents::CloudEvent::decode(binary.as_slice()).unwrap();
    assert_eq!(decoded.data, Some(cloudevents::cloud_event::Data::BinaryData(vec![0xff, 0x00])));
}

#[test]
#[rustfmt::skip]
fn transact_request() {
    let event = sample_cloudevent_bytes();
    let bytes = concat(&[
        &[0x0a, 0x08], b"accounts",  // database_name (1)
        &[0x12, 0x2c], &event,       // events (2), 44 bytes
        &[0x1a, 0x0c],               // conditions (3), 12 bytes: AppendCondition
        &[0x0a, 0x08],               //   selector (1), 8 bytes: EventSelector
        &[0x0a, 0x06], b"orders",    //     stream_equals (1)
        &[0x18, 0x00],               //   max (3) = 0, present because it is in a oneof
        &[0x22, 0x04], b"tx-1",      // transaction_id (4)
    ]);
    let expected = TransactRequest {
        database_name: "accounts".into(),
        events: vec![sample_cloudevent()],
        conditions: vec![AppendCondition {
            selector: Some(EventSelector {
                selector: Some(event_selector::Selector::StreamEquals("orders".into())),
            }),
            bound: Some(append_condition::Bound::Max(0)),
        }],
        transaction_id: "tx-1".into(),
    };
    assert_golden(&bytes, &expected);
}

#[test]
#[rustfmt::skip]
fn conditions_range_min_and_or() {
    use event_selector::Selector;
    let range = concat(&[
        &[0x0a, 0x0d],             // selector (1), 13 bytes
        &[0x3a, 0x0b],             //   and (7), 11 bytes: EventSelectorList
        &[0x0a, 0x04],             //     selectors (1)
        &[0x22, 0x02], b"o-",      //       subject_starts_with (4)
        &[0x0a, 0x03],             //     selectors (1)
        &[0x2a, 0x01], b"t",       //       event_type_equals (5)
        &[0x22, 0x04],             // range (4): RevisionRange
        &[0x08, 0x01, 0x10, 0x05], //   min (1) = 1, max (2) = 5
    ]);
    let expected = AppendCondition {
        selector: Some(EventSelector {
            selector: Some(Selector::And(EventSelectorList {
                selectors: vec![
                    EventSelector { selector: Some(Selector::SubjectStartsWith("o-".into())) },
                    EventSelector { selector: Some(Selector::EventTypeEquals("t".into())) },
                ],
            })),
        }),
        bound: Some(append_condition::Bound::Range(RevisionRange { min: 1, max: 5 })),
    };
    assert_golden(&range, &expected);

    let min = concat(&[
        &[0x0a, 0x09],          // selector (1), 9 bytes
        &[0x42, 0x07],          //   or (8), 7 bytes
        &[0x0a, 0x05],          //     selectors (1)
        &[0x12, 0x03], b"ord",  //       stream_starts_with (2)
        &[0x10, 0x03],          // min (2) = 3
    ]);
    let expected = AppendCondition {
        selector: Some(EventSelector {
            selector: Some(Selector::Or(EventSelectorList {
                selectors: vec![EventSelector {
                    selector: Some(Selector::StreamStartsWith("ord".into())),
                }],
            })),
        }),
        bound: Some(append_condition::Bound::Min(3)),
    };
    assert_golden(&min, &expected);

    // subject_equals (3) and event_type_starts_with (6)
    let subject = concat(&[&[0x1a, 0x01], b"s"]);
    assert_golden(&subject, &EventSelector { selector: Some(Selector::SubjectEquals("s".into())) });
    let type_prefix = concat(&[&[0x32, 0x01], b"c"]);
    assert_golden(
        &type_prefix,
        &EventSelector { selector: Some(Selector::EventTypeStartsWith("c".into())) },
    );
}

#[test]
#[rustfmt::skip]
fn command_responses() {
    let error = concat(&[
        &[0x1a, 0x05],       // error (3), 5 bytes: CommandError
        &[0x08, 0x04],       //   code (1) = FAILED_PRECONDITION (4)
        &[0x12, 0x01], b"x", //   message (2)
    ]);
    let expected = CommandResponse {
        result: Some(command_response::Result::Error(CommandError {
            code: ErrorCode::FailedPrecondition as i32,
            message: "x".into(),
        })),
    };
    assert_golden(&error, &expected);

    let database = concat(&[&[0x0a, 0x03], &[0x0a, 0x01], b"d"]); // database (1) { name (1) }
    let expected = CommandResponse {
        result: Some(command_response::Result::Database(Database {
            name: "d".into(),
            ..Default::default()
        })),
    };
    assert_golden(&database, &expected);

    let batch = concat(&[&[0x12, 0x02], &[0x28, 0x01]]); // batch_summary (2) { event_count (5) = 1 }
    let expected = CommandResponse {
        result: Some(command_response::Result::BatchSummary(BatchSummary {
            event_count: 1,
            ..Default::default()
        })),
    };
    assert_golden(&batch, &expected);
}

#[test]
fn error_code_numbers() {
    let codes = [
        (ErrorCode::Unspecified, 0),
        (ErrorCode::InvalidArgument, 1),
        (ErrorCode::NotFound, 2),
        (ErrorCode::AlreadyExists, 3),
        (ErrorCode::FailedPrecondition, 4),
        (ErrorCode::Internal, 5),
    ];
    for (code, number) in codes {
        assert_eq!(code as i32, number, "{code:?}");
    }
}

#[test]
fn json_mapping_accepts_both_field_spellings_and_rfc3339() {
    let camel: TransactRequest = serde_json::from_str(
        r#"{"databaseName":"accounts","transactionId":"tx-1",
            "conditions":[{"selector":{"streamEquals":"orders"},"max":"0"}]}"#,
    )
    .unwrap();
    let snake: TransactRequest = serde_json::from_str(
        r#"{"database_name":"accounts","transaction_id":"tx-1",
            "conditions":[{"selector":{"stream_equals":"orders"},"max":0}]}"#,
    )
    .unwrap();
    assert_eq!(camel, snake);
    assert_eq!(
        camel.conditions[0].bound,
        Some(append_condition::Bound::Max(0))
    );

    let db: Database =
        serde_json::from_str(r#"{"name":"a","createdAt":"2024-01-15T10:30:00.123Z"}"#).unwrap();
    assert_eq!(db.created_at, Some(ts1()));

    let response: CommandResponse =
        serde_json::from_str(r#"{"error":{"code":"NOT_FOUND","message":"m"}}"#).unwrap();
    assert_eq!(
        response.result,
        Some(command_response::Result::Error(CommandError {
            code: ErrorCode::NotFound as i32,
            message: "m".into()
        }))
    );
}

#[test]
fn descriptor_set_names_every_file() {
    use prost::Message as _;
    let set =
        pbjson_types::FileDescriptorSet::decode(evidentsource_proto::FILE_DESCRIPTOR_SET).unwrap();
    let names: Vec<_> = set.file.iter().map(|f| f.name().to_string()).collect();
    for expected in [
        "io/cloudevents/v1/cloudevents.proto",
        "evidentsource/v1/database.proto",
        "evidentsource/v1/commands.proto",
        "evidentsource/v1/query.proto",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
}
