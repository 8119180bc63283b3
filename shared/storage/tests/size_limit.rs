//! DynamoDB refuses a `TransactWriteItems` whose items add up to more than
//! 4 MB. Event data is limited to 1 MiB per transaction, extension
//! attributes are not: a transaction within every domain limit can still be
//! too large to store (issue 16, item 6). It must be refused as bad input,
//! before anything is sent; moto does not enforce the limit, so the test
//! would otherwise see it commit.

mod common;

use std::collections::BTreeMap;

use common::*;
use evidentsource_domain::ErrorCode;
use evidentsource_proto::cloudevents::{
    CloudEvent,
    cloud_event::{CloudEventAttributeValue, cloud_event_attribute_value::Attr},
};
use evidentsource_storage::size::MAX_TRANSACTION_BYTES;

/// Events each carrying `bytes` of incompressible extension attribute.
fn heavy_events(prefix: &str, count: usize, bytes: usize) -> Vec<CloudEvent> {
    (0..count)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let mut e = event(&id, "blobs", None, "stored", 1);
            let mut attributes = BTreeMap::new();
            attributes.insert(
                "blob".to_string(),
                CloudEventAttributeValue {
                    attr: Some(Attr::CeBytes(random_bytes(&id, bytes))),
                },
            );
            e.attributes = attributes;
            e
        })
        .collect()
}

#[tokio::test]
async fn a_transaction_over_the_size_limit_is_refused_before_it_is_sent() {
    let store = store().await;
    let name = new_db();
    store.create_database(&name).await.unwrap();

    // 17 × 240 KB: within the domain's limits (1000 events, 1 MiB of data,
    // 256 KiB per event), over 4 MB as stored.
    let too_big = tx(&name, heavy_events("big", 17, 240_000), vec![], "too-big");
    let err = store.transact(&too_big).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err}");
    let message = err.to_domain().message;
    assert!(
        message.contains(&MAX_TRANSACTION_BYTES.to_string()),
        "names the limit: {message}"
    );
    assert_eq!(err.to_domain().field.as_deref(), Some("events"));
    assert_eq!(
        store.get_database(&name).await.unwrap().revision,
        0,
        "nothing written"
    );

    // Just under the limit it commits.
    let fits = tx(&name, heavy_events("fits", 16, 240_000), vec![], "fits");
    let summary = store.transact(&fits).await.unwrap();
    assert_eq!((summary.basis, summary.revision), (0, 16));
}
