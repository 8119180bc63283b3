//! GOLDEN VALUES: THESE MUST NEVER CHANGE.
//!
//! A response's `ce_id` is derived from the command's correlation id and
//! its fingerprint; consumers de-duplicate responses on it, and a response
//! re-published by a later release (after a redelivered command) must
//! carry the id this release gave it. The fingerprint also names the
//! command in the idempotency records a release reads back from the
//! table. These literals were produced once by this release's code and
//! checked against an independent computation (SHA-256 and UUID v5 in
//! Python); if this test fails, the derivation changed: fix the code,
//! never the literals.

use evidentsource_cloudevents_kafka::{AttributesReader, encode};
use evidentsource_commands::{
    CommandRequest, FAILED, ResponseParts, SUCCEEDED, error_response, response_event,
};
use evidentsource_domain::Error;
use evidentsource_proto::{
    CommandResponse, CreateDatabaseRequest, Database, DeleteDatabaseRequest, Message,
    TransactRequest, cloudevents::CloudEvent, command_response,
};

const SOURCE: &str = "https://api.example.com/async-commands";
/// 2024-01-15T10:30:00.123Z.
const RECORDED_AT: i64 = 1_705_314_600_123;

fn create_accounts() -> CommandRequest {
    CommandRequest::CreateDatabase(CreateDatabaseRequest {
        database_name: "accounts".into(),
    })
}

#[test]
fn golden_fingerprints_never_change() {
    let table = [
        (create_accounts(), "b965eac88fb0d04910cb87e43d36671f"),
        (
            CommandRequest::DeleteDatabase(DeleteDatabaseRequest {
                database_name: "accounts".into(),
            }),
            "8274c5b3cb902e2533c19b060bc206c9",
        ),
        (
            CommandRequest::Transact(TransactRequest {
                database_name: "orders-eu_2".into(),
                events: vec![CloudEvent {
                    id: "e1".into(),
                    source: "https://x/orders".into(),
                    spec_version: "1.0".into(),
                    r#type: "placed".into(),
                    ..Default::default()
                }],
                conditions: vec![],
                transaction_id: "t1".into(),
            }),
            "a681b07f60da96f95eb9e44743179ab7",
        ),
    ];
    for (command, fingerprint) in table {
        assert_eq!(
            hex::encode(command.fingerprint()),
            fingerprint,
            "{}",
            command.ce_type()
        );
    }
}

/// A response's inputs and its golden `ce_id` and headers.
struct Golden<'a> {
    correlation_id: &'a str,
    fingerprint: &'a [u8],
    subject: Option<&'a str>,
    id: &'a str,
    /// The headers after the common ones: `ce_subject` when set, then
    /// `ce_correlationid`.
    tail: &'a [(&'a str, &'a [u8])],
}

#[test]
fn golden_response_ids_and_header_bytes_never_change() {
    let fingerprint = create_accounts().fingerprint();
    let succeeded = CommandResponse {
        result: Some(command_response::Result::Database(Database {
            name: "accounts".into(),
            ..Default::default()
        })),
    }
    .encode_to_vec();
    let fingerprint: &[u8] = &fingerprint;
    let table = [
        Golden {
            correlation_id: "c-1",
            fingerprint: &[1, 2, 3],
            subject: None,
            id: "f8f8b335-1480-5d7c-906e-896500a1cdfc",
            tail: &[("ce_correlationid", b"c-1")],
        },
        Golden {
            correlation_id: "order-42",
            fingerprint,
            subject: Some("accounts"),
            id: "5d2f6604-a96b-5b3e-b58f-0d81f922bddd",
            tail: &[
                ("ce_subject", b"accounts"),
                ("ce_correlationid", b"order-42"),
            ],
        },
        Golden {
            correlation_id: "",
            fingerprint: &[],
            subject: None,
            id: "ef34f5ba-2344-5fa9-bb97-50601129452b",
            tail: &[("ce_correlationid", b"")],
        },
        Golden {
            correlation_id: "κ-1",
            fingerprint,
            subject: None,
            id: "e18da379-6244-5c82-a5b6-520be3349d84",
            // "κ-1" in UTF-8.
            tail: &[("ce_correlationid", b"\xce\xba-1")],
        },
    ];
    for Golden {
        correlation_id,
        fingerprint,
        subject,
        id,
        tail,
    } in table
    {
        let event = response_event(&ResponseParts {
            correlation_id,
            fingerprint,
            source: SOURCE,
            recorded_at: RECORDED_AT,
            subject,
            response: &succeeded,
            traceparent: None,
            tracestate: None,
        })
        .unwrap();
        assert_eq!(event.id(), id, "ce_id for {correlation_id:?}");
        let expected: Vec<(String, Vec<u8>)> = [
            ("ce_specversion", &b"1.0"[..]),
            ("ce_id", id.as_bytes()),
            ("ce_source", SOURCE.as_bytes()),
            ("ce_type", SUCCEEDED.as_bytes()),
            ("ce_time", b"2024-01-15T10:30:00.123Z"),
            ("ce_datacontenttype", b"application/protobuf"),
            ("content-type", b"application/protobuf"),
        ]
        .iter()
        .chain(tail)
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect();
        let message = encode(&event);
        assert_eq!(message.headers, expected, "headers for {correlation_id:?}");
        assert_eq!(hex::encode(&message.value), "0a0a0a086163636f756e7473");
        // A failed response to the same command has the same id: the id
        // names the command's response, whatever it says.
        let failed = error_response(&Error::invalid_argument("name", "is required"));
        let failed = response_event(&ResponseParts {
            correlation_id,
            fingerprint,
            source: SOURCE,
            recorded_at: RECORDED_AT,
            subject,
            response: &failed.encode_to_vec(),
            traceparent: None,
            tracestate: None,
        })
        .unwrap();
        assert_eq!(failed.ty(), FAILED);
        assert_eq!(failed.id(), id, "failed ce_id for {correlation_id:?}");
    }
}
