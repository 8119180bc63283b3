//! A provisioned Kafka event source's on-failure destination: for each
//! batch it gives up on, one SQS message of the invocation record Lambda
//! sends to a queue: metadata naming the records (per topic-partition, the
//! first and last offset and their timestamps), why they were given up and
//! how often they were tried, but not the records themselves. Whoever
//! replays them reads them back from the topic.

use std::collections::BTreeMap;

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
    /// Sends the batch's invocation record.
    pub async fn send(
        &self,
        records: &[KafkaRecord],
        condition: Condition,
        attempts: u32,
    ) -> Result<(), String> {
        let body = invocation_record(records, condition, attempts, &self.origin, Utc::now());
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("SendMessage: {}", e.into_service_error()))?;
        Ok(())
    }
}

/// The message for a batch given up on, in the shape of Lambda's Kafka
/// invocation records (`KafkaBatchInfo`, offsets as strings).
pub fn invocation_record(
    records: &[KafkaRecord],
    condition: Condition,
    attempts: u32,
    origin: &Origin,
    now: DateTime<Utc>,
) -> Value {
    let time = |r: &KafkaRecord| r.timestamp.0.to_rfc3339_opts(SecondsFormat::Millis, true);
    // Per topic-partition, the first and the last record (by offset).
    let mut ranges: BTreeMap<String, (&KafkaRecord, &KafkaRecord)> = BTreeMap::new();
    for r in records {
        let key = format!("{}-{}", r.topic.as_deref().unwrap_or_default(), r.partition);
        let range = ranges.entry(key).or_insert((r, r));
        if r.offset < range.0.offset {
            range.0 = r;
        }
        if r.offset > range.1.offset {
            range.1 = r;
        }
    }
    let records_info: serde_json::Map<String, Value> = ranges
        .into_iter()
        .map(|(key, (first, last))| {
            let info = json!({
                "firstRecordOffset": first.offset.to_string(),
                "lastRecordOffset": last.offset.to_string(),
                "firstRecordTimestamp": time(first),
                "lastRecordTimestamp": time(last),
            });
            (key, info)
        })
        .collect();
    let payload_size: usize = records
        .iter()
        .map(|r| serde_json::to_vec(r).map_or(0, |v| v.len()))
        .sum();
    let mut batch_info = json!({
        "batchSize": records.len(),
        "bootstrapServers": origin.bootstrap_servers,
        "payloadSize": payload_size,
        "recordsInfo": records_info,
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
            let v = invocation_record(
                std::slice::from_ref(&record),
                condition,
                attempts,
                &origin,
                now,
            );
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
        let v = invocation_record(
            std::slice::from_ref(&record),
            Condition::RecordAgeExceeded,
            0,
            &msk,
            now,
        );
        assert_eq!(
            v["KafkaBatchInfo"]["eventSourceArn"],
            "arn:aws:kafka:us-east-1:0:cluster/c/x"
        );
    }

    #[test]
    fn a_batch_is_one_message_with_a_range_per_partition() {
        let record = |partition: i64, offset: i64| {
            let mut r = KafkaRecord::default();
            r.topic = Some("c".into());
            r.partition = partition;
            r.offset = offset;
            r
        };
        let origin = Origin {
            function_arn: "f".into(),
            event_source_arn: None,
            bootstrap_servers: "b".into(),
        };
        let batch = [record(0, 7), record(1, 3), record(0, 5), record(0, 9)];
        let v = invocation_record(&batch, Condition::RecordAgeExceeded, 0, &origin, Utc::now());
        assert_eq!(v["KafkaBatchInfo"]["batchSize"], 4);
        let info = &v["KafkaBatchInfo"]["recordsInfo"];
        // (topic-partition, first, last)
        for (key, first, last) in [("c-0", "5", "9"), ("c-1", "3", "3")] {
            assert_eq!(info[key]["firstRecordOffset"], first, "{key}");
            assert_eq!(info[key]["lastRecordOffset"], last, "{key}");
        }
        assert_eq!(info.as_object().unwrap().len(), 2);
    }
}
