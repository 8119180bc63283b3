//! The CloudEvents Kafka binding's decoder (binary mode headers and value):
//! whatever the headers, an event or a bounded error, never a panic, and
//! bounded allocation.

use evidentsource_cloudevents_kafka::decode;
use evidentsource_fuzz::{Counting, check_allocation, fuzz};
use proptest::{collection::vec, option, prelude::*, test_runner::TestCaseError};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject",
            "ce_datacontenttype", "content-type", "ce_dataschema", "ce_revision", "ce_basis",
            "ce_correlationid", "ce_traceparent", "ce_", "CE_TYPE", "x-other",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
        1 => (1usize..100_000).prop_map(|n| format!("ce_{}", "a".repeat(n))),
    ]
}

fn value() -> impl Strategy<Value = Option<Vec<u8>>> {
    option::weighted(
        0.95,
        prop_oneof![
            prop::sample::select(vec![
                "1.0",
                "0.3",
                "",
                "2024-01-15T10:30:00.123Z",
                "+10000-01-01T00:00:00Z",
                "https://example.com/a",
                "not a uri",
                "application/json",
                "application/protobuf",
                "18446744073709551615",
                "18446744073709551616",
                "-1",
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
            vec(any::<u8>(), 0..64),
            (1usize..300_000).prop_map(|n| vec![b'7'; n]),
        ],
    )
}

#[test]
fn kafka_binding_headers() {
    let strategy = (
        vec((name(), value()), 0..14),
        option::of(vec(any::<u8>(), 0..256)),
    );
    fuzz("kafka binding", strategy, |(headers, payload)| {
        let len = headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
            .sum::<usize>()
            + payload.as_ref().map_or(0, Vec::len);
        let base = Counting::reset_peak();
        let decoded = decode(
            headers.iter().map(|(k, v)| (k.as_str(), v.as_deref())),
            payload.as_deref(),
        );
        check_allocation(base, len)?;
        if let Err(e) = decoded {
            let message = e.to_string();
            prop_assert!(message.len() <= 1024, "a {}-byte error", message.len());
        }
        Ok::<(), TestCaseError>(())
    });
}
