//! `DatabaseEvents` against tansu: a group resumes after the last message
//! its member finished (not the last one it was handed), the copies and
//! gaps of a planted sequence are told, and a resuming member does not
//! take a database's first event read for a gap.

use std::time::Duration;

use evidentsource_client::kafka::{DatabaseEvents, Next, SequenceProblem, StartAt};
use evidentsource_database_events::DatabaseEvent;
use evidentsource_local_servers::{
    create_topic, kafka_config, shared, unique_name, wait_for_kafka,
};
use evidentsource_proto::{BatchSummary, Database, Timestamp};
use rdkafka::{
    Message,
    producer::{FutureProducer, FutureRecord},
};

const WAIT: Duration = Duration::from_secs(30);

fn batch(db: &str, basis: u64, revision: u64) -> DatabaseEvent {
    DatabaseEvent::Transacted(BatchSummary {
        id: format!("batch-{revision}"),
        database: db.to_owned(),
        basis,
        revision,
        event_count: (revision - basis) as u32,
        recorded_time: Some(Timestamp {
            seconds: 1_705_314_600,
            nanos: 0,
        }),
    })
}

fn created(db: &str) -> DatabaseEvent {
    DatabaseEvent::Created(Database {
        name: db.to_owned(),
        ..Default::default()
    })
}

async fn topic_with(events: &[DatabaseEvent]) -> String {
    let brokers = &shared().kafka_brokers;
    wait_for_kafka(brokers, WAIT).unwrap();
    let topic = unique_name("database-events");
    create_topic(brokers, &topic, 1).await.unwrap();
    let producer: FutureProducer = kafka_config(brokers).create().unwrap();
    for event in events {
        let e = event.encode("https://api.example.com");
        let record = FutureRecord::to(&topic)
            .key(&e.key)
            .payload(&e.message.value)
            .headers(e.message.owned_headers());
        producer.send(record, WAIT).await.unwrap();
    }
    topic
}

fn config() -> rdkafka::ClientConfig {
    let mut c = kafka_config(&shared().kafka_brokers);
    // Joins within seconds (a broker admits a member after up to half the
    // session timeout); commits soon after a message is finished.
    c.set("session.timeout.ms", "6000")
        .set("auto.commit.interval.ms", "200");
    c
}

/// (offset, what came of it) of the next message.
async fn next(events: &mut DatabaseEvents) -> (i64, String) {
    match events.next_within(WAIT).await.unwrap().expect("a message") {
        Next::Event(d) => (
            d.message.offset(),
            format!(
                "{} {:?}",
                d.event.event_type(),
                d.problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            ),
        ),
        Next::Duplicate { id, message } => (message.offset(), format!("duplicate {id}")),
        Next::Invalid { reason, message } => (message.offset(), format!("invalid {reason}")),
    }
}

#[tokio::test]
async fn copies_and_gaps_of_a_planted_sequence_are_told() {
    let db = unique_name("db");
    let topic = topic_with(&[
        created(&db),
        batch(&db, 0, 2),
        batch(&db, 0, 2), // a byte-identical copy
        batch(&db, 3, 4), // a gap: revision 3 is missing
    ])
    .await;
    let mut events =
        DatabaseEvents::subscribe(&config(), &unique_name("g"), &topic, StartAt::Beginning)
            .unwrap();
    let mut read = Vec::new();
    for _ in 0..4 {
        read.push(next(&mut events).await.1);
    }
    let copy = match batch(&db, 0, 2) {
        e @ DatabaseEvent::Transacted(_) => e.id().to_string(),
        _ => unreachable!(),
    };
    assert_eq!(
        read,
        [
            "com.evidentsource.database.created.v1 []".to_owned(),
            "com.evidentsource.batch.transacted.v1 []".to_owned(),
            format!("duplicate {copy}"),
            format!(
                "com.evidentsource.batch.transacted.v1 [{:?}]",
                SequenceProblem::Gap {
                    expected_basis: 2,
                    basis: 3
                }
                .to_string()
            ),
        ]
    );
}

#[tokio::test]
async fn a_group_resumes_after_the_last_message_finished() {
    let db = unique_name("db");
    let topic = topic_with(&[
        created(&db),
        batch(&db, 0, 1),
        batch(&db, 1, 2),
        batch(&db, 2, 3),
    ])
    .await;
    let group = unique_name("g");
    {
        let mut events =
            DatabaseEvents::subscribe(&config(), &group, &topic, StartAt::Beginning).unwrap();
        assert_eq!(next(&mut events).await.0, 0);
        assert_eq!(next(&mut events).await.0, 1);
        // Handed offset 2, but the member stops before finishing it.
        assert_eq!(next(&mut events).await.0, 2);
        // Dropping the consumer closes it, which commits what was stored.
    }
    let mut events =
        DatabaseEvents::subscribe(&config(), &group, &topic, StartAt::Committed).unwrap();
    // Offset 2 again (unfinished), and no "without Created" for a database
    // whose Created this member never read.
    let (offset, what) = next(&mut events).await;
    assert_eq!(
        (offset, what.as_str()),
        (2, "com.evidentsource.batch.transacted.v1 []")
    );
    assert_eq!(
        next(&mut events).await,
        (3, "com.evidentsource.batch.transacted.v1 []".to_owned())
    );

    // A member that knows where its state is pins the database: the
    // chain is checked from its first event on.
    let mut events =
        DatabaseEvents::subscribe(&config(), &unique_name("g"), &topic, StartAt::Committed)
            .unwrap();
    events.resume_at(&db, 5);
    let (_, what) = next(&mut events).await;
    assert_eq!(
        what,
        "com.evidentsource.database.created.v1 [\"CREATED while the database is at revision 5 (missed Deleted?)\"]"
    );
}
