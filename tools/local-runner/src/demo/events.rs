//! The demo's last step: read the database's events as any consumer
//! would, with the client's [`DatabaseEvents`] (duplicates skipped, gaps
//! reported), and hold them to what the API and the async response
//! answered.

use std::time::Duration;

use evidentsource_client::{
    BatchSummary,
    kafka::{DatabaseEvents, Next, ReceivedBody, ReceivedDatabaseEvent, StartAt},
};
use evidentsource_database_events::describe;
use evidentsource_kafka_config::KafkaContext;
use rdkafka::{ClientConfig, Message};

use super::{TOPIC_WAIT, Verdict};

/// One event of the database as read, with what the consumer helper
/// found wrong with it (nothing, normally).
#[derive(Debug, Clone)]
pub struct Read {
    pub event: Result<ReceivedDatabaseEvent, String>,
    pub problems: Vec<String>,
}

/// Reads the topic from its beginning in a group of its own until `db`'s
/// Deleted, keeping `db`'s events.
pub(super) async fn read(
    kafka: &ClientConfig,
    context: KafkaContext,
    topic: &str,
    db: &str,
) -> Result<Vec<Read>, String> {
    let group = format!("demo-reader-{}", uuid::Uuid::new_v4().simple());
    let mut config = kafka.clone();
    // Joins within seconds (a broker admits a member after up to half the
    // session timeout).
    config.set("session.timeout.ms", "6000");
    let mut events =
        DatabaseEvents::subscribe_with_context(&config, &group, topic, StartAt::Beginning, context)
            .map_err(|e| e.to_string())?;
    let until = tokio::time::Instant::now() + TOPIC_WAIT;
    let mut read = Vec::new();
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        let next = events
            .next_within(left.max(Duration::from_millis(1)))
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!("{topic}: the Deleted of {db} not seen within {TOPIC_WAIT:?}")
            })?;
        let ours = |m: &rdkafka::message::OwnedMessage| m.key() == Some(db.as_bytes());
        match next {
            Next::Event(d) if ours(&d.message) => {
                print!("{}", describe(&d.message, Some(&d.event)));
                let deleted = matches!(d.event.body, ReceivedBody::Deleted);
                read.push(Read {
                    event: Ok(d.event),
                    problems: d.problems.iter().map(ToString::to_string).collect(),
                });
                if deleted {
                    return Ok(read);
                }
            }
            Next::Duplicate { id, message } if ours(&message) => {
                println!("   (byte-identical copy of {id}: skipped)");
            }
            Next::Invalid { reason, message } if ours(&message) => read.push(Read {
                event: Err(reason),
                problems: Vec::new(),
            }),
            _ => {}
        }
    }
}

/// The contract's checks on one database's events, plus the demo's own:
/// one event per change it made, each batch as the API or the response
/// reported it.
pub fn check_sequence(verdict: &mut Verdict, read: &[Read], batches: &[BatchSummary]) {
    let mut problems = Vec::new();
    let mut events = Vec::new();
    for r in read {
        match &r.event {
            Ok(e) => {
                problems.extend(r.problems.iter().map(|p| format!("{}: {p}", e.id)));
                events.push(e);
            }
            Err(e) => problems.push(format!("invalid event: {e}")),
        }
    }
    for p in &problems {
        println!("   !! {p}");
    }
    verdict.check(
        problems.is_empty(),
        "no gap, no invalid event, no conflicting duplicate",
    );
    let shape: Vec<String> = events
        .iter()
        .map(|e| match &e.body {
            ReceivedBody::Created(d) => format!("Created@{}", d.revision),
            ReceivedBody::Transacted(b) => format!("Transacted {}->{}", b.basis, b.revision),
            ReceivedBody::Deleted => "Deleted".to_owned(),
        })
        .collect();
    // Created, each batch the demo made, Deleted: nothing else.
    let expected: Vec<String> = std::iter::once("Created@0".to_owned())
        .chain(
            batches
                .iter()
                .map(|b| format!("Transacted {}->{}", b.basis, b.revision)),
        )
        .chain(std::iter::once("Deleted".to_owned()))
        .collect();
    verdict.check(
        shape == expected,
        format!("{} (read: {})", expected.join(", "), shape.join(", ")),
    );
    let on_topic: Vec<(&str, u64, u64, u32)> = events
        .iter()
        .filter_map(|e| match &e.body {
            ReceivedBody::Transacted(b) => {
                Some((b.id.as_str(), b.basis, b.revision, b.event_count))
            }
            _ => None,
        })
        .collect();
    let answered: Vec<(&str, u64, u64, u32)> = batches
        .iter()
        .map(|b| (b.id.as_str(), b.basis, b.revision, b.event_count))
        .collect();
    verdict.check(
        on_topic == answered,
        "each batch on the topic is the one the API / the async response answered (id, basis, revision, count)",
    );
}

#[cfg(test)]
mod tests {
    use evidentsource_proto::{BatchSummary as Summary, Database};

    use super::*;

    fn read(body: ReceivedBody, problems: &[&str]) -> Read {
        Read {
            event: Ok(ReceivedDatabaseEvent {
                database: "d".into(),
                id: "x".into(),
                time: None,
                revision: None,
                basis: None,
                body,
            }),
            problems: problems.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn created() -> Read {
        read(ReceivedBody::Created(Database::default()), &[])
    }

    fn transacted(basis: u64, revision: u64, problems: &[&str]) -> Read {
        read(
            ReceivedBody::Transacted(Summary {
                id: format!("batch-{revision}"),
                database: "d".into(),
                basis,
                revision,
                event_count: 1,
                recorded_time: None,
            }),
            problems,
        )
    }

    fn answered(basis: u64, revision: u64) -> BatchSummary {
        BatchSummary {
            id: format!("batch-{revision}"),
            database: "d".into(),
            basis,
            revision,
            event_count: 1,
            recorded_time: None,
        }
    }

    #[test]
    fn the_sequence_is_held_to_what_the_demo_did() {
        let batches = [answered(0, 2), answered(2, 3)];
        let deleted = || read(ReceivedBody::Deleted, &[]);
        // (what was read, failed checks)
        let table: Vec<(Vec<Read>, usize)> = vec![
            (
                vec![
                    created(),
                    transacted(0, 2, &[]),
                    transacted(2, 3, &[]),
                    deleted(),
                ],
                0,
            ),
            // A problem the consumer helper reported.
            (
                vec![
                    created(),
                    transacted(0, 2, &[]),
                    transacted(2, 3, &["GAP: expected basis 2, got 3"]),
                    deleted(),
                ],
                1,
            ),
            // A batch missing: the shape and the batches differ.
            (vec![created(), transacted(0, 2, &[]), deleted()], 2),
            // No Deleted.
            (
                vec![created(), transacted(0, 2, &[]), transacted(2, 3, &[])],
                1,
            ),
            // An invalid message.
            (
                vec![
                    created(),
                    Read {
                        event: Err("no ce_type".into()),
                        problems: vec![],
                    },
                    transacted(0, 2, &[]),
                    transacted(2, 3, &[]),
                    deleted(),
                ],
                1,
            ),
        ];
        for (read, failed) in table {
            let mut verdict = Verdict::default();
            check_sequence(&mut verdict, &read, &batches);
            assert_eq!(verdict.checks, 3);
            assert_eq!(verdict.failures.len(), failed, "{:?}", verdict.failures);
        }
    }
}
