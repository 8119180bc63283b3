#![allow(dead_code)]

use std::{collections::HashMap, time::Duration};

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use evidentsource_cloudevents_kafka::decode_message;
use evidentsource_database_events::{ReceivedBody, ReceivedDatabaseEvent};
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
    message::Headers,
};
use serde_json::json;

/// A Lambda DynamoDB stream record of a head item.
pub fn head_record(
    seq: u64,
    db: &str,
    state: &str,
    created: i64,
    basis: u64,
    revision: u64,
    time: i64,
) -> serde_json::Value {
    let mut image = json!({
        "pk": {"S": format!("db#{db}")}, "sk": {"S": "head"}, "name": {"S": db}, "state": {"S": state},
        "incarnation": {"S": "0123456789abcdef"}, "created_at": {"N": created.to_string()},
        "basis": {"N": basis.to_string()}, "revision": {"N": revision.to_string()},
        "revision_time": {"N": time.to_string()}
    });
    if revision > 0 {
        image["batch_id"] = json!({"S": format!("batch-{db}-{revision}")});
    }
    if state == "deleted" {
        image["deleted_at"] = json!({"N": (time + 1).to_string()});
    }
    json!({
        "eventID": format!("e{seq}"), "eventName": if revision == 0 && state == "active" { "INSERT" } else { "MODIFY" },
        "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_705_314_600,
            "Keys": {"pk": {"S": format!("db#{db}")}, "sk": {"S": "head"}},
            "NewImage": image, "SequenceNumber": format!("{seq:021}"), "SizeBytes": 200,
            "StreamViewType": "NEW_IMAGE"
        }
    })
}

/// Per database: Created, `batches` Transacted of 2 events each, Deleted,
/// interleaved across databases as one shard would carry them.
pub fn interleaved_records(databases: &[&str], batches: u64) -> Vec<serde_json::Value> {
    let mut records = Vec::new();
    let mut seq = 1;
    let t0 = 1_705_314_600_000;
    for step in 0..batches + 2 {
        for (d, db) in databases.iter().enumerate() {
            let created = t0 + d as i64;
            let r = match step {
                0 => head_record(seq, db, "active", created, 0, 0, created),
                s if s <= batches => head_record(
                    seq,
                    db,
                    "active",
                    created,
                    2 * (s - 1),
                    2 * s,
                    created + s as i64 * 10,
                ),
                _ => head_record(
                    seq,
                    db,
                    "deleted",
                    created,
                    2 * (batches - 1),
                    2 * batches,
                    created + 10_000,
                ),
            };
            records.push(r);
            seq += 1;
        }
    }
    records
}

pub fn event(records: &[serde_json::Value]) -> DynamoDbEvent {
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// A message as read back: partition, key, headers, value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub partition: i32,
    pub key: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub value: Vec<u8>,
}

impl Read {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// Reads every message of `topic` (all partitions, from the beginning)
/// until none arrives for `quiet`.
pub async fn read_all(
    config: ClientConfig,
    topic: &str,
    partitions: i32,
    quiet: Duration,
) -> Vec<Read> {
    let consumer: StreamConsumer = config
        .clone()
        .set("group.id", "reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    while let Ok(Ok(m)) = tokio::time::timeout(quiet, consumer.recv()).await {
        out.push(Read {
            partition: m.partition(),
            key: m.key().unwrap_or_default().to_vec(),
            headers: m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default(),
            value: m.payload().unwrap_or_default().to_vec(),
        });
        let _ = decode_message(&m).expect("every message decodes");
    }
    out
}

/// Checks the contract's per-database sequence over what a consumer read:
/// Created first, each Transacted's basis = previous revision, Deleted last,
/// duplicates byte-identical to the first copy. Returns the distinct events
/// per database, in order.
pub fn check_sequences(messages: &[Read]) -> HashMap<String, Vec<String>> {
    let mut first_copy: HashMap<String, &Read> = HashMap::new();
    let mut sequences: HashMap<String, Vec<String>> = HashMap::new();
    let mut last_revision: HashMap<String, Option<u64>> = HashMap::new();
    let mut partition_of: HashMap<String, i32> = HashMap::new();
    for m in messages {
        let id = m.header("ce_id").expect("ce_id");
        if let Some(original) = first_copy.get(&id) {
            assert_eq!(*original, m, "a duplicate is byte-identical");
            continue;
        }
        first_copy.insert(id.clone(), m);
        let db = String::from_utf8(m.key.clone()).unwrap();
        assert_eq!(
            *partition_of.entry(db.clone()).or_insert(m.partition),
            m.partition,
            "one partition per database"
        );
        let decoded = evidentsource_cloudevents_kafka::decode(
            m.headers
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_slice()))),
            Some(&m.value),
        )
        .unwrap();
        let received = ReceivedDatabaseEvent::parse(Some(&m.key), &decoded).unwrap();
        let last = last_revision.entry(db.clone()).or_insert(None);
        match &received.body {
            ReceivedBody::Created(d) => {
                assert!(last.is_none(), "{db}: Created first");
                assert_eq!(d.revision, 0);
                *last = Some(0);
            }
            ReceivedBody::Transacted(b) => {
                assert_eq!(Some(b.basis), *last, "{db}: no gap, no reordering");
                *last = Some(b.revision);
            }
            ReceivedBody::Deleted => {
                assert!(last.is_some(), "{db}: Deleted after Created");
                *last = None;
            }
        }
        sequences.entry(db).or_default().push(
            received
                .event_type()
                .rsplit('.')
                .nth(1)
                .unwrap_or("")
                .to_owned(),
        );
    }
    sequences
}
