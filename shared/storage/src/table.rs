//! The table's definition, for tests and the local stack (in AWS the SAM
//! template creates it with the same settings).

use aws_sdk_dynamodb::{
    Client,
    types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        StreamSpecification, StreamViewType, TimeToLiveSpecification,
    },
};

use crate::{
    StoreError, attribute,
    error::{classify, fault},
};

/// The attribute DynamoDB TTL reads (tombstone head items).
pub const TTL_ATTRIBUTE: &str = attribute::TTL;

/// Creates the table: `pk`/`sk` strings, on-demand, a stream with new
/// images (the publisher reads only the head item's new image), TTL on `ttl`.
/// Returns the stream ARN.
pub async fn create_table(client: &Client, name: &str) -> Result<String, StoreError> {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(fault)
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(fault)
    };
    let out = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(attribute::PK)?)
        .attribute_definitions(attr(attribute::SK)?)
        .key_schema(key(attribute::PK, KeyType::Hash)?)
        .key_schema(key(attribute::SK, KeyType::Range)?)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(fault)?,
        )
        .send()
        .await
        .map_err(|e| classify("CreateTable", e))?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()
                .map_err(fault)?,
        )
        .send()
        .await
        .map_err(|e| classify("UpdateTimeToLive", e))?;
    Ok(out
        .table_description()
        .and_then(|d| d.latest_stream_arn())
        .unwrap_or_default()
        .to_owned())
}
