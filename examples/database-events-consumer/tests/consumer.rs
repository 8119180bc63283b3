//! The example consumer (on the client's `DatabaseEvents`) reads a
//! sequence from tansu and flags exactly the gap and the duplicate planted
//! in it.

use std::time::Duration;

use evidentsource_database_events::DatabaseEvent;
use evidentsource_database_events_consumer::{DatabaseEvents, StartAt, consume};
use evidentsource_local_servers::{
    create_topic, kafka_config, shared, unique_name, wait_for_kafka,
};
use evidentsource_proto::{BatchSummary, Database, Timestamp};
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::test]
async fn prints_events_and_flags_gaps_and_duplicates() {
    let brokers = &shared().kafka_brokers;
    wait_for_kafka(brokers, Duration::from_secs(30)).unwrap();
    let topic = unique_name("database-events");
    create_topic(brokers, &topic, 1).await.unwrap();

    let db = unique_name("db");
    let instant = Timestamp {
        seconds: 1_705_314_600,
        nanos: 0,
    };
    let at = Some(instant);
    let batch = |basis, revision| {
        DatabaseEvent::Transacted(BatchSummary {
            id: format!("batch-{revision}"),
            database: db.clone(),
            basis,
            revision,
            event_count: (revision - basis) as u32,
            recorded_time: at,
        })
    };
    let created = DatabaseEvent::Created(Database {
        name: db.clone(),
        created_at: at,
        basis: 0,
        revision: 0,
        revision_timestamp: at,
    });
    let sequence = [
        created,
        batch(0, 2),
        batch(2, 4),
        batch(2, 4), // a duplicate, byte-identical
        batch(5, 6), // a gap: revision 5 is missing
        DatabaseEvent::Deleted {
            database: db.clone(),
            created_at: instant,
            deleted_at: instant,
        },
    ];
    let producer: FutureProducer = kafka_config(brokers).create().unwrap();
    for event in &sequence {
        let e = event.encode("https://api.example.com");
        let record = FutureRecord::to(&topic)
            .key(&e.key)
            .payload(&e.message.value)
            .headers(e.message.owned_headers());
        producer
            .send(record, Duration::from_secs(10))
            .await
            .unwrap();
    }

    let mut config = kafka_config(brokers);
    config.set("session.timeout.ms", "6000");
    let events = DatabaseEvents::subscribe(
        &config,
        &unique_name("consumer"),
        &topic,
        StartAt::Beginning,
    )
    .unwrap();
    let mut out = Vec::new();
    let violations = consume(
        events,
        &mut out,
        Some(Duration::from_secs(10)),
        Some(sequence.len()),
    )
    .await
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    // The gap; the byte-identical copy is shown, not counted.
    assert_eq!(violations, 1, "{text}");
    assert_eq!(text.matches("!! DUPLICATE of").count(), 1, "{text}");
    assert_eq!(
        text.matches("!! GAP: expected basis 4, got 5").count(),
        1,
        "{text}"
    );
    assert_eq!(
        text.matches("ce_type: com.evidentsource.batch.transacted.v1")
            .count(),
        4,
        "{text}"
    );
    assert!(text.contains("body: Database { name: "), "{text}");
    assert!(
        text.contains("basis: 0, revision: 2, event_count: 2"),
        "{text}"
    );
    assert!(text.contains("body: (empty)"), "{text}");
}
