//! The publisher's hot paths, per record: a stream record becoming a Kafka
//! message, and the CloudEvents header binding both ways.

use aws_lambda_events::event::dynamodb::EventRecord;
use evidentsource_bench::{publisher::BASE_URI, records::stream_event};
use evidentsource_cloudevents_kafka::{decode_message, encode};
use evidentsource_database_events::DatabaseEvent;
use evidentsource_stream_publisher::{Classified, classify, kafka_headers};
use rdkafka::message::{OwnedMessage, Timestamp};

fn main() {
    divan::main();
}

fn record() -> EventRecord {
    stream_event(1).records.remove(0)
}

fn event() -> DatabaseEvent {
    match classify(&record()) {
        Classified::Publish(e) => e,
        other => panic!("{other:?}"),
    }
}

/// Stream record → key, headers and value, as the handler does per record.
#[divan::bench]
fn stream_record_to_kafka_message(bencher: divan::Bencher) {
    let record = record();
    bencher.bench_local(|| match classify(divan::black_box(&record)) {
        Classified::Publish(e) => {
            let headers = kafka_headers(&e, BASE_URI);
            let value = e.value();
            (e, value, headers)
        }
        _ => unreachable!(),
    });
}

/// CloudEvent → binary-mode headers (rdkafka `OwnedHeaders`) and value.
#[divan::bench]
fn headers_encode(bencher: divan::Bencher) {
    let cloudevent = event().to_cloudevent(BASE_URI);
    bencher.bench_local(|| encode(divan::black_box(&cloudevent)).owned_headers());
}

/// A received Kafka message → CloudEvent (headers and value checked).
#[divan::bench]
fn headers_decode(bencher: divan::Bencher) {
    let encoded = event().encode(BASE_URI);
    let message = OwnedMessage::new(
        Some(encoded.message.value.clone()),
        Some(encoded.key.into_bytes()),
        "evidentsource-database-events".into(),
        Timestamp::NotAvailable,
        0,
        0,
        Some(encoded.message.owned_headers()),
    );
    bencher.bench_local(|| decode_message(divan::black_box(&message)).expect("decodes"));
}
