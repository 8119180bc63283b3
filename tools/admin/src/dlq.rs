//! `dlq replay`: drains the publisher's dead-letter queue (the template's
//! `PublisherDeadLetterQueue`) by republishing the databases its messages
//! are about, deleting each message only once their events are
//! acknowledged (docs/replay.md).
//!
//! The queue holds two kinds of message:
//! - the publisher's letters about a head record that could not be read
//!   (`kind: poison-head-record`, see `stream-publisher/src/dead_letter.rs`):
//!   they name the database;
//! - the event source's records of a batch it gave up on
//!   (`DDBStreamBatchInfo`: a shard and a range of sequence numbers). They
//!   do not name databases, and the records themselves have left the
//!   stream by then (they are given up at the stream's 24 h retention), so
//!   every database of the table is republished for them.
//!
//! Each database is republished whole, from Created: a dead letter names a
//! stream record, not a revision, and a consumer de-duplicates on `ce_id`,
//! so what it already has costs it nothing.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_sqs::Client;
use serde::Deserialize;

use crate::republish::{RepublishError, Republisher};

/// The variable naming the queue (the publisher's, the template's output
/// `PublisherDeadLetterQueueUrl`).
pub use evidentsource_stream_publisher::dead_letter::QUEUE_URL_VAR;

/// The poison letters' `kind` (the publisher's `DeadLetter::KIND`).
const POISON: &str = evidentsource_stream_publisher::DeadLetter::KIND;

/// How long received messages stay hidden while they are worked on;
/// those that are not deleted are made visible again at once.
const VISIBILITY_SECONDS: i32 = 900;

/// What one message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Letter {
    /// Republish this database.
    Database(String),
    /// A batch the event source gave up on: republish every database.
    Batch { shard_id: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PoisonLetter {
    kind: String,
    database: Option<String>,
}

#[derive(Deserialize)]
struct OnFailure {
    #[serde(rename = "DDBStreamBatchInfo")]
    batch: BatchInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchInfo {
    shard_id: String,
}

/// Reads a message body; the error says why it is not one of ours.
pub fn parse_letter(body: &str) -> Result<Letter, String> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if value.get("DDBStreamBatchInfo").is_some() {
        let on_failure: OnFailure = serde_json::from_value(value)
            .map_err(|e| format!("DDBStreamBatchInfo does not read: {e}"))?;
        return Ok(Letter::Batch {
            shard_id: on_failure.batch.shard_id,
        });
    }
    let letter: PoisonLetter =
        serde_json::from_value(value).map_err(|e| format!("not a dead letter: {e}"))?;
    if letter.kind != POISON {
        return Err(format!("unknown kind {:?}", letter.kind));
    }
    match letter.database {
        Some(db) if !db.is_empty() => Ok(Letter::Database(db)),
        _ => Err("the letter names no database".into()),
    }
}

/// A message as received.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    receipt: String,
    letter: Result<Letter, String>,
}

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// Databases republished, with the number of events sent.
    pub republished: Vec<(String, usize)>,
    /// Databases named by a letter that have no head item any more:
    /// nothing is left to republish; their letters are deleted.
    pub gone: Vec<String>,
    /// Databases whose republish failed, with why: their messages stay.
    pub failed: Vec<(String, String)>,
    /// Messages that are not dead letters (id and why): left in place.
    pub malformed: Vec<(String, String)>,
    /// Messages deleted.
    pub deleted: usize,
    /// Messages left in the queue (failed or malformed).
    pub kept: usize,
}

impl Replayed {
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.malformed.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("queue {url}: {error}")]
    Queue { url: String, error: String },
    #[error(transparent)]
    Republish(#[from] RepublishError),
}

/// Drains up to `max_messages` messages of the queue at `url`.
pub async fn replay(
    sqs: &Client,
    url: &str,
    republisher: &Republisher,
    max_messages: usize,
) -> Result<Replayed, DlqError> {
    let queue_error = |e: String| DlqError::Queue {
        url: url.to_owned(),
        error: e,
    };
    let mut received = Vec::new();
    while received.len() < max_messages {
        let batch = (max_messages - received.len()).min(10) as i32;
        let page = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(batch)
            .visibility_timeout(VISIBILITY_SECONDS)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| queue_error(e.into_service_error().to_string()))?;
        if page.messages().is_empty() {
            break;
        }
        for m in page.messages() {
            received.push(Received {
                id: m.message_id().unwrap_or("?").to_owned(),
                receipt: m.receipt_handle().unwrap_or_default().to_owned(),
                letter: parse_letter(m.body().unwrap_or_default()),
            });
        }
    }

    let mut databases: BTreeSet<String> = BTreeSet::new();
    let mut all = false;
    for r in &received {
        match &r.letter {
            Ok(Letter::Database(db)) => {
                databases.insert(db.clone());
            }
            Ok(Letter::Batch { .. }) => all = true,
            Err(_) => {}
        }
    }
    if all {
        let heads = republisher
            .store()
            .list_heads()
            .await
            .map_err(RepublishError::from)?;
        databases.extend(heads.into_iter().map(|h| h.name));
    }

    let mut outcome = Replayed::default();
    let mut done: BTreeMap<String, bool> = BTreeMap::new();
    for db in databases {
        let ok = match republisher.republish(&db, None).await {
            Ok(sent) => {
                outcome.republished.push((db.clone(), sent));
                true
            }
            Err(RepublishError::NotFound(_)) => {
                outcome.gone.push(db.clone());
                true
            }
            Err(e) => {
                outcome.failed.push((db.clone(), e.to_string()));
                false
            }
        };
        done.insert(db, ok);
    }
    let all_done = done.values().all(|ok| *ok);

    for r in received {
        let delete = match &r.letter {
            Ok(Letter::Database(db)) => done.get(db).copied().unwrap_or(false),
            Ok(Letter::Batch { .. }) => all_done,
            Err(why) => {
                outcome.malformed.push((r.id.clone(), why.clone()));
                false
            }
        };
        if delete {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(&r.receipt)
                .send()
                .await
                .map_err(|e| queue_error(e.into_service_error().to_string()))?;
            outcome.deleted += 1;
        } else {
            // Back in the queue at once, for the next run or an operator.
            sqs.change_message_visibility()
                .queue_url(url)
                .receipt_handle(&r.receipt)
                .visibility_timeout(0)
                .send()
                .await
                .map_err(|e| queue_error(e.into_service_error().to_string()))?;
            outcome.kept += 1;
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use evidentsource_stream_publisher::DeadLetter;
    use serde_json::json;

    use super::*;

    /// A letter as the publisher writes it.
    fn publisher_letter(database: &str) -> String {
        let record = serde_json::from_value(json!({
            "eventID": "e1", "eventName": "MODIFY", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/t/stream/x",
            "dynamodb": {
                "Keys": {"pk": {"S": format!("db#{database}")}, "sk": {"S": "head"}},
                "NewImage": {}, "SequenceNumber": "7", "SizeBytes": 1,
                "StreamViewType": "NEW_IMAGE"
            }
        }))
        .unwrap();
        serde_json::to_string(&DeadLetter::of(&record, "not a head item")).unwrap()
    }

    #[test]
    fn letters_are_read() {
        let on_failure = json!({
            "requestContext": {"condition": "RetryAttemptsExhausted"},
            "version": "1.0",
            "DDBStreamBatchInfo": {
                "shardId": "shardId-1", "startSequenceNumber": "1", "endSequenceNumber": "9",
                "batchSize": 3, "streamArn": "arn:x"
            }
        })
        .to_string();
        let cases: [(String, Result<Letter, &str>); 7] = [
            (
                publisher_letter("accounts"),
                Ok(Letter::Database("accounts".into())),
            ),
            (publisher_letter("a#b"), Ok(Letter::Database("a#b".into()))),
            (
                on_failure,
                Ok(Letter::Batch {
                    shard_id: "shardId-1".into(),
                }),
            ),
            ("hello".into(), Err("not JSON")),
            (
                r#"{"kind":"other","database":"x"}"#.into(),
                Err("unknown kind"),
            ),
            (
                r#"{"kind":"poison-head-record"}"#.into(),
                Err("names no database"),
            ),
            (r#"{"DDBStreamBatchInfo":{}}"#.into(), Err("does not read")),
        ];
        for (body, expected) in cases {
            match (parse_letter(&body), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{body}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{body}: {got}"),
                (got, want) => panic!("{body}: {got:?}, expected {want:?}"),
            }
        }
    }
}
