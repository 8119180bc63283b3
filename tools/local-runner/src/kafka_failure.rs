//! A provisioned Kafka event source's on-failure destination: for each
//! record it gives up on, one SQS message of the invocation record Lambda
//! sends to a queue: metadata naming the record (topic-partition, offset,
//! timestamp), why it was given up and how often it was tried, but not the
//! record itself. Whoever replays it reads the record back from the topic.

use aws_lambda_events::kafka::KafkaRecord;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// Why a record went to the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// `MaximumRetryAttempts` used up.
    RetryAttemptsExhausted,
    /// Older than `MaximumRecordAgeInSeconds`: never invoked.
    RecordAgeExceeded,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            Condition::RecordAgeExceeded => "RecordAgeExceeded",
        }
    }
}

/// Where the invocation record says it came from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub function_arn: String,
    /// The MSK cluster's ARN; None for a self-managed cluster.
    pub event_source_arn: Option<String>,
    pub bootstrap_servers: String,
}

/// The queue the records go to.
#[derive(Debug, Clone)]
pub struct FailureQueue {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
    pub origin: Origin,
}

impl FailureQueue {
    /// Sends one message per record.
    pub async fn send(
        &self,
        records: &[KafkaRecord],
        condition: Condition,
        attempts: u32,
    ) -> Result<(), String> {
        for record in records {
            let body = invocation_record(record, condition, attempts, &self.origin, Utc::now());
            self.client
                .send_message()
                .queue_url(&self.url)
                .message_body(body.to_string())
                .send()
                .await
                .map_err(|e| format!("SendMessage: {}", e.into_service_error()))?;
        }
        Ok(())
    }
}

/// The message for `record`, in the shape of Lambda's Kafka invocation
/// records (`KafkaBatchInfo`, offsets as strings).
pub fn invocation_record(
    record: &KafkaRecord,
    condition: Condition,
    attempts: u32,
    origin: &Origin,
    now: DateTime<Utc>,
) -> Value {
    let topic_partition = format!(
        "{}-{}",
        record.topic.as_deref().unwrap_or_default(),
        record.partition
    );
    let timestamp = record
        .timestamp
        .0
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    let payload_size = serde_json::to_vec(record).map_or(0, |v| v.len());
    let mut batch_info = json!({
        "batchSize": 1,
        "bootstrapServers": origin.bootstrap_servers,
        "payloadSize": payload_size,
        "recordsInfo": {
            topic_partition: {
                "firstRecordOffset": record.offset.to_string(),
                "lastRecordOffset": record.offset.to_string(),
                "firstRecordTimestamp": timestamp,
                "lastRecordTimestamp": timestamp,
            }
        }
    });
    if let Some(arn) = &origin.event_source_arn {
        batch_info["eventSourceArn"] = json!(arn);
    }
    json!({
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": origin.function_arn,
            "condition": condition.as_str(),
            "approximateInvokeCount": attempts,
        },
        // A record too old was never given to the function.
        "responseContext": match condition {
            Condition::RetryAttemptsExhausted => json!({
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            }),
            Condition::RecordAgeExceeded => Value::Null,
        },
        "version": "1.0",
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "KafkaBatchInfo": batch_info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_record_and_why_without_its_content() {
        let mut record = KafkaRecord::default();
        record.topic = Some("evidentsource-async-commands".into());
        record.partition = 2;
        record.offset = 41;
        record.timestamp = aws_lambda_events::encodings::MillisecondTimestamp(
            DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
        );
        record.value = Some("c2VjcmV0IGNvbW1hbmQ=".into());
        let origin = Origin {
            function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
            event_source_arn: None,
            bootstrap_servers: "127.0.0.1:9092".into(),
        };
        let now = DateTime::from_timestamp_millis(1_700_000_060_000).unwrap();
        let table = [
            (Condition::RetryAttemptsExhausted, 11, "Unhandled"),
            (Condition::RecordAgeExceeded, 0, ""),
        ];
        for (condition, attempts, function_error) in table {
            let v = invocation_record(&record, condition, attempts, &origin, now);
            assert_eq!(v["requestContext"]["condition"], condition.as_str());
            assert_eq!(v["requestContext"]["approximateInvokeCount"], attempts);
            assert_eq!(
                v["responseContext"]["functionError"].as_str().unwrap_or(""),
                function_error
            );
            assert_eq!(v["timestamp"], "2023-11-14T22:14:20.000Z");
            let info = &v["KafkaBatchInfo"];
            assert_eq!(info["batchSize"], 1);
            assert!(info.get("eventSourceArn").is_none());
            let r = &info["recordsInfo"]["evidentsource-async-commands-2"];
            assert_eq!(r["firstRecordOffset"], "41");
            assert_eq!(r["lastRecordOffset"], "41");
            assert_eq!(r["firstRecordTimestamp"], "2023-11-14T22:13:20.123Z");
            assert!(!v.to_string().contains("c2VjcmV0"), "no record content");
        }
        let msk = Origin {
            event_source_arn: Some("arn:aws:kafka:us-east-1:0:cluster/c/x".into()),
            ..origin
        };
        let v = invocation_record(&record, Condition::RecordAgeExceeded, 0, &msk, now);
        assert_eq!(
            v["KafkaBatchInfo"]["eventSourceArn"],
            "arn:aws:kafka:us-east-1:0:cluster/c/x"
        );
    }
}
