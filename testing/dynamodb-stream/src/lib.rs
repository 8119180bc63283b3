//! A DynamoDB stream, read the way Lambda's event source reads it: every
//! shard from its oldest record (or from where a previous reader stopped),
//! records turned into the Lambda event record shape (`aws_lambda_events`),
//! so that the same handler code runs locally and in tests as in AWS.

use aws_lambda_events::event::dynamodb::{EventRecord, StreamRecord, StreamViewType};
use aws_sdk_dynamodbstreams::{
    Client,
    types::{OperationType, Record, ShardIteratorType},
};

#[derive(Debug, thiserror::Error)]
#[error("DynamoDB stream: {0}")]
pub struct StreamError(String);

fn err(op: &str, e: impl std::fmt::Display) -> StreamError {
    StreamError(format!("{op}: {e}"))
}

/// Where a shard is first read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardStart {
    /// The oldest record still in the shard.
    TrimHorizon,
    /// Only records written from now on.
    Latest,
    /// The record after this sequence number (a checkpoint).
    AfterSequenceNumber(String),
}

/// Reads all shards of one stream, oldest records first.
pub struct StreamReader {
    client: Client,
    stream_arn: String,
    region: String,
    /// (shard id, next iterator); a closed shard's iterator is `None`.
    shards: Vec<(String, Option<String>)>,
}

impl StreamReader {
    /// Opens every shard at its oldest record (TRIM_HORIZON).
    pub async fn open(client: Client, stream_arn: &str, region: &str) -> Result<Self, StreamError> {
        Self::open_at(client, stream_arn, region, |_| ShardStart::TrimHorizon).await
    }

    /// Opens every shard where `start` says (given the shard id).
    pub async fn open_at(
        client: Client,
        stream_arn: &str,
        region: &str,
        start: impl Fn(&str) -> ShardStart,
    ) -> Result<Self, StreamError> {
        let description = client
            .describe_stream()
            .stream_arn(stream_arn)
            .send()
            .await
            .map_err(|e| err("DescribeStream", e.into_service_error()))?;
        let mut shards = Vec::new();
        let shard_ids: Vec<String> = description
            .stream_description()
            .map(|d| {
                d.shards()
                    .iter()
                    .filter_map(|s| s.shard_id().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for shard_id in shard_ids {
            let (kind, sequence_number) = match start(&shard_id) {
                ShardStart::TrimHorizon => (ShardIteratorType::TrimHorizon, None),
                ShardStart::Latest => (ShardIteratorType::Latest, None),
                ShardStart::AfterSequenceNumber(n) => {
                    (ShardIteratorType::AfterSequenceNumber, Some(n))
                }
            };
            let iterator = client
                .get_shard_iterator()
                .stream_arn(stream_arn)
                .shard_id(&shard_id)
                .shard_iterator_type(kind)
                .set_sequence_number(sequence_number)
                .send()
                .await
                .map_err(|e| err("GetShardIterator", e.into_service_error()))?
                .shard_iterator;
            shards.push((shard_id, iterator));
        }
        Ok(StreamReader {
            client,
            stream_arn: stream_arn.to_owned(),
            region: region.to_owned(),
            shards,
        })
    }

    /// The next records of every shard (up to `limit` per shard), as Lambda
    /// event records. Empty when nothing new has arrived.
    pub async fn poll(&mut self, limit: i32) -> Result<Vec<EventRecord>, StreamError> {
        Ok(self
            .poll_by_shard(limit)
            .await?
            .into_iter()
            .flat_map(|(_, records)| records)
            .collect())
    }

    /// [`Self::poll`], the records of each shard apart: (shard id, records).
    /// Shards without new records are left out.
    pub async fn poll_by_shard(
        &mut self,
        limit: i32,
    ) -> Result<Vec<(String, Vec<EventRecord>)>, StreamError> {
        let mut out = Vec::new();
        for (shard_id, iterator) in &mut self.shards {
            let Some(current) = iterator.clone() else {
                continue;
            };
            let page = self
                .client
                .get_records()
                .shard_iterator(current)
                .limit(limit)
                .send()
                .await
                .map_err(|e| err("GetRecords", e.into_service_error()))?;
            *iterator = page.next_shard_iterator().map(str::to_owned);
            if !page.records().is_empty() {
                out.push((
                    shard_id.clone(),
                    page.records()
                        .iter()
                        .map(|r| to_lambda(r, &self.region, &self.stream_arn))
                        .collect(),
                ));
            }
        }
        Ok(out)
    }
}

/// An SDK stream record in the shape Lambda delivers it.
pub fn to_lambda(record: &Record, region: &str, stream_arn: &str) -> EventRecord {
    let mut change = StreamRecord::default();
    if let Some(d) = record.dynamodb() {
        change.keys = d.keys().cloned().unwrap_or_default().into();
        change.new_image = d.new_image().cloned().unwrap_or_default().into();
        change.old_image = d.old_image().cloned().unwrap_or_default().into();
        change.sequence_number = d.sequence_number().map(str::to_owned);
        change.size_bytes = d.size_bytes().unwrap_or_default();
        if let Some(t) = d.approximate_creation_date_time() {
            change.approximate_creation_date_time =
                chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default();
        }
        change.stream_view_type = d.stream_view_type().map(|v| match v.as_str() {
            "NEW_IMAGE" => StreamViewType::NewImage,
            "OLD_IMAGE" => StreamViewType::OldImage,
            "NEW_AND_OLD_IMAGES" => StreamViewType::NewAndOldImages,
            _ => StreamViewType::KeysOnly,
        });
    }
    let mut out = EventRecord::default();
    out.aws_region = region.to_owned();
    out.change = change;
    out.event_id = record.event_id().unwrap_or_default().to_owned();
    out.event_name = match record.event_name() {
        Some(OperationType::Insert) => "INSERT",
        Some(OperationType::Modify) => "MODIFY",
        Some(OperationType::Remove) => "REMOVE",
        _ => "UNKNOWN",
    }
    .to_owned();
    out.event_source = record.event_source().map(str::to_owned);
    out.event_version = record.event_version().map(str::to_owned);
    out.event_source_arn = Some(stream_arn.to_owned());
    out
}
