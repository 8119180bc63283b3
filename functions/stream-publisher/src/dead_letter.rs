//! Head records that can never be published go to the dead-letter queue.
//!
//! A head image that does not decode (a bug, or an item written by hand)
//! cannot become a database event. Reporting it as a batch item failure
//! would hold its whole shard for as long as the stream keeps the record
//! (the event source retries for 24 h); skipping it with a log line only
//! leaves a gap nobody is told about. So it is sent to the queue the event
//! source already uses for exhausted batches (`DEAD_LETTER_QUEUE_URL`),
//! naming the stream, the sequence number and the database, and then
//! skipped. An operator's alarm on the queue's depth sees it; the database's
//! events can be re-published from the table once the item is repaired. If
//! the queue cannot take the letter, the record is reported as failed
//! instead, so that nothing is skipped unrecorded.

use aws_lambda_events::event::dynamodb::EventRecord;

use crate::record;

/// The variable naming the queue (the SAM template sets it).
pub const QUEUE_URL_VAR: &str = "DEAD_LETTER_QUEUE_URL";

/// What the queue is told about one record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Tells these letters from the event source's own batch records.
    pub kind: &'static str,
    pub stream_arn: Option<String>,
    pub sequence_number: Option<String>,
    pub event_id: String,
    pub database: Option<String>,
    pub reason: String,
}

impl DeadLetter {
    pub const KIND: &'static str = "poison-head-record";

    pub fn of(record: &EventRecord, reason: &str) -> Self {
        DeadLetter {
            kind: Self::KIND,
            stream_arn: record.event_source_arn.clone(),
            sequence_number: record.change.sequence_number.clone(),
            event_id: record.event_id.clone(),
            database: record::database_of(record),
            reason: reason.to_owned(),
        }
    }
}

/// The SQS queue the letters go to.
#[derive(Debug, Clone)]
pub struct DeadLetterQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl DeadLetterQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        DeadLetterQueue {
            client,
            url: url.into(),
        }
    }

    /// The queue named by `DEAD_LETTER_QUEUE_URL`, if set.
    pub fn from_env(aws: &aws_config::SdkConfig) -> Option<Self> {
        let url = std::env::var(QUEUE_URL_VAR)
            .ok()
            .filter(|u| !u.is_empty())?;
        Some(Self::new(aws_sdk_sqs::Client::new(aws), url))
    }

    /// Sends one letter; the error says why it did not arrive.
    pub async fn send(&self, letter: &DeadLetter) -> Result<(), String> {
        let body = serde_json::to_string(letter).map_err(|e| e.to_string())?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| e.into_service_error().to_string())
    }
}
