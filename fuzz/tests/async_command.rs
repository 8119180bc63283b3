//! The async command reader (`Incoming::read`: Lambda's base64 Kafka record
//! → a command or the error it is answered with): never a panic, every
//! refusal INVALID_ARGUMENT with a bounded message, a correlation id that
//! fits a key, and bounded allocation.

use std::collections::HashMap;

use aws_lambda_events::kafka::KafkaRecord;
use base64::{Engine, engine::general_purpose::STANDARD};
use evidentsource_async_commands::incoming::Incoming;
use evidentsource_domain::{Error, ErrorCode, Limits};
use evidentsource_fuzz::{Counting, check_allocation, fuzz};
use proptest::{collection::vec, option, prelude::*, test_runner::TestCaseError};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const TYPES: &[&str] = &[
    "com.evidentsource.command.create-database.v1",
    "com.evidentsource.command.transact.v1",
    "com.evidentsource.command.delete-database.v1",
    "com.example.other",
];

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..512),
        "[a-zA-Z0-9-]{0,40}".prop_map(String::into_bytes),
        Just(br#"{"databaseName": "shop"}"#.to_vec()),
        Just(br#"{"databaseName": "shop", "events": [{"id": "1", "source": "/orders", "specVersion": "1.0", "type": "t"}]}"#.to_vec()),
        Just(vec![0x0a, 0x04, b's', b'h', b'o', b'p']),
        (1usize..200_000).prop_map(|n| vec![b'z'; n]),
    ]
}

/// Base64 as Lambda sends it, or something that is not base64 at all.
fn encoded() -> impl Strategy<Value = Option<String>> {
    option::of(prop_oneof![
        4 => bytes().prop_map(|b| STANDARD.encode(b)),
        1 => any::<String>(),
    ])
}

fn headers() -> impl Strategy<Value = Vec<HashMap<String, Vec<i8>>>> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_time",
            "ce_correlationid",
            "ce_datacontenttype",
            "content-type",
            "ce_subject",
            "ce_traceparent",
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ];
    let value = prop_oneof![
        prop::sample::select(TYPES.to_vec()).prop_map(|t| t.as_bytes().to_vec()),
        Just(b"1.0".to_vec()),
        Just(b"application/json".to_vec()),
        bytes(),
    ];
    vec((name, value), 0..10).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| HashMap::from([(k, v.into_iter().map(|b| b as i8).collect())]))
            .collect()
    })
}

#[test]
fn async_command_records() {
    let limits = Limits::default();
    let strategy = (encoded(), encoded(), headers(), any::<i64>(), any::<i64>());
    fuzz(
        "async command",
        strategy,
        |(key, value, headers, partition, offset)| {
            let len = key.as_ref().map_or(0, String::len)
                + value.as_ref().map_or(0, String::len)
                + headers
                    .iter()
                    .flat_map(|h| h.iter().map(|(k, v)| k.len() + v.len()))
                    .sum::<usize>();
            let mut record = KafkaRecord::default();
            record.topic = Some("commands".into());
            record.partition = partition;
            record.offset = offset;
            record.key = key;
            record.value = value;
            record.headers = headers;
            let base = Counting::reset_peak();
            let incoming = Incoming::read("commands", &record, &limits);
            check_allocation(base, len)?;
            if incoming.anonymous {
                prop_assert_eq!(&incoming.correlation_id, &incoming.coordinates);
            } else {
                prop_assert!(incoming.correlation_id.len() <= 256);
            }
            if let Err(e) = &incoming.command {
                prop_assert_eq!(e.code, ErrorCode::InvalidArgument, "{}", e.message);
                prop_assert!(e.message.len() <= Error::MAX_MESSAGE_BYTES);
            }
            Ok::<(), TestCaseError>(())
        },
    );
}
