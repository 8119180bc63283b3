//! The handler against moto, fed the table's real stream: records of
//! several databases, one deleted, one with more to index than the
//! budget allows, and a malformed head record.

use std::time::Duration;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::config::{BehaviorVersion, Credentials, Region};
use evidentsource_domain::{DatabaseName, Limits, Transaction};
use evidentsource_dynamodb_stream::StreamReader;
use evidentsource_indexer::{BatchReport, FailureKind, failure_kind, handle};
use evidentsource_local_servers::{dynamodb_client, shared, unique_name};
use evidentsource_proto::{TransactRequest, cloudevents::CloudEvent};
use evidentsource_storage::{Deadline, Store, StoreConfig, table::create_table};
use evidentsource_table_schema::index::watermark_sk;

/// A commit of `n` events about subjects `{tag}-0..n` on stream `orders`.
fn commit(db: &DatabaseName, tag: &str, n: usize) -> Transaction {
    let request = TransactRequest {
        database_name: db.to_string(),
        events: (0..n)
            .map(|i| CloudEvent {
                id: format!("{tag}-{i}"),
                source: "https://example.com/shop/orders".into(),
                spec_version: "1.0".into(),
                r#type: "com.shop.placed".into(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    Transaction::from_request(request, &Limits::default()).unwrap()
}

/// A store on a new table, and the table's stream from its start.
async fn store_and_stream() -> (Store, StreamReader) {
    let servers = shared();
    let client = dynamodb_client(&servers.dynamodb_endpoint);
    let table = unique_name("indexer");
    let arn = create_table(&client, &table).await.unwrap();
    let streams = aws_sdk_dynamodbstreams::Client::from_conf(
        aws_sdk_dynamodbstreams::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&servers.dynamodb_endpoint)
            .credentials_provider(Credentials::new("local", "local", None, None, "test"))
            .build(),
    );
    let reader = StreamReader::open(streams, &arn, "us-east-1")
        .await
        .unwrap();
    (Store::new(client, StoreConfig::new(table)), reader)
}

/// Every record written since the last read: head records and the
/// others (chunks, tx records), as an unfiltered batch.
async fn records(reader: &mut StreamReader) -> Vec<EventRecord> {
    let mut all = Vec::new();
    loop {
        let page = reader.poll(1000).await.unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

fn batch(records: Vec<EventRecord>) -> Event {
    let mut event = Event::default();
    event.records = records;
    event
}

/// The head records of `names` written since the last read.
async fn head_records(reader: &mut StreamReader, names: &[&str]) -> Vec<EventRecord> {
    let all = records(reader).await;
    all.into_iter()
        .filter(|r| names.iter().any(|n| is_head_of(r, n)))
        .collect()
}

/// The sequence numbers a response reports.
fn reported(report: &BatchReport) -> Vec<Option<String>> {
    let failures = &report.response.batch_item_failures;
    failures.iter().map(|f| f.item_identifier.clone()).collect()
}

fn is_head_of(record: &EventRecord, name: &str) -> bool {
    serde_json::to_value(&record.change.keys).unwrap()
        == serde_json::json!({"pk": {"S": format!("db#{name}")}, "sk": {"S": "head"}})
}

/// Every item of the database's head partition: the head, and the
/// watermarks of its incarnations.
async fn head_partition(store: &Store, name: &str) -> Vec<String> {
    let out = store
        .client()
        .query()
        .table_name(&store.config().table_name)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("db#{name}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .map(|i| i["sk"].as_s().unwrap().clone())
        .collect()
}

#[tokio::test]
async fn the_live_database_is_indexed_to_its_head_and_the_deleted_one_left_alone() {
    let (store, mut reader) = store_and_stream().await;
    let live = DatabaseName::parse(unique_name("live")).unwrap();
    let gone = DatabaseName::parse(unique_name("gone")).unwrap();
    store.create_database(&live).await.unwrap();
    store.create_database(&gone).await.unwrap();
    for round in 0..3 {
        store
            .transact(&commit(&live, &format!("l{round}"), 4))
            .await
            .unwrap();
        store
            .transact(&commit(&gone, &format!("g{round}"), 2))
            .await
            .unwrap();
    }
    let dead = store.read_head(gone.as_str()).await.unwrap().unwrap();
    store.delete_database(&gone).await.unwrap();

    // Unfiltered: the handler's second line skips what is not an active head.
    let event = batch(records(&mut reader).await);
    let report = handle(&store, &event, Deadline::after(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(report.response.batch_item_failures.is_empty(), "{report:?}");
    let names: Vec<&str> = report
        .databases
        .iter()
        .map(|d| d.work.name.as_str())
        .collect();
    assert_eq!(names, [live.as_str(), gone.as_str()]);

    let indexed = store
        .head_and_watermark(live.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((indexed.watermark, indexed.head.revision), (12, 12));
    // Its metrics record: the live database's 12 events, caught up (lag
    // 0; the deleted one's distance does not count).
    let metrics = evidentsource_indexer::metrics::to_metrics(
        Some(&report),
        evidentsource_runtime::metrics::Metrics::new("N", "indexer"),
    );
    assert_eq!(metrics.get("EventsIndexed"), Some(&[12.0][..]));
    assert_eq!(metrics.get("IndexLag"), Some(&[0.0][..]));
    assert!(metrics.get("IndexWriteUnits").is_some_and(|u| u[0] > 0.0));
    assert_eq!(metrics.outcome(), "ok");
    // The deleted database: its tombstone and no watermark of its own.
    assert_eq!(head_partition(&store, gone.as_str()).await, ["head"]);
    assert_eq!(
        head_partition(&store, live.as_str()).await,
        ["head".to_owned(), watermark_sk(&indexed.head.incarnation)]
    );
    assert_ne!(dead.incarnation, indexed.head.incarnation);
}

/// Too little time to index: the database's first record in the batch is
/// reported (not the batch's first, which another, indexed, database
/// holds); a malformed head record is skipped, never reported.
#[tokio::test]
async fn a_database_the_budget_cannot_reach_is_reported_from_its_first_record() {
    let (store, mut reader) = store_and_stream().await;
    let done = DatabaseName::parse(unique_name("done")).unwrap();
    let late = DatabaseName::parse(unique_name("late")).unwrap();
    store.create_database(&done).await.unwrap();
    store.transact(&commit(&done, "d", 3)).await.unwrap();
    store
        .index_database(done.as_str(), Duration::from_secs(30))
        .await
        .unwrap();
    store.create_database(&late).await.unwrap();
    store.transact(&commit(&late, "l0", 3)).await.unwrap();
    store.transact(&commit(&late, "l1", 3)).await.unwrap();

    let mut heads = head_records(&mut reader, &[done.as_str(), late.as_str()]).await;
    assert_eq!(heads.len(), 5);
    // A head record whose image lost its incarnation, before the others.
    let mut broken = heads[0].clone();
    broken.change.new_image.remove("incarnation");
    broken.change.sequence_number = Some("1".into());
    heads.insert(0, broken);
    let late_first = heads
        .iter()
        .position(|r| is_head_of(r, late.as_str()))
        .unwrap();
    assert!(late_first > 1);

    // The writer's budget ends STOP_BEFORE_DEADLINE before the deadline:
    // nothing is left for a slice (the store alone would start one).
    let deadline = Deadline::after(Duration::from_secs(8));
    let report = handle(&store, &batch(heads.clone()), deadline)
        .await
        .unwrap();
    assert_eq!(
        reported(&report),
        [heads[late_first].change.sequence_number.clone()]
    );
    assert_eq!(report.malformed, 1);
    let late_index = store
        .head_and_watermark(late.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(late_index.watermark, 0);

    // With time, the retry indexes it.
    let report = handle(
        &store,
        &batch(heads),
        Deadline::after(Duration::from_secs(60)),
    )
    .await
    .unwrap();
    assert!(report.response.batch_item_failures.is_empty(), "{report:?}");
    let late_index = store
        .head_and_watermark(late.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(late_index.watermark, 6);
}

/// An error is a failure too (reported from the database's first record),
/// told apart as permanent when the deployment is wrong.
#[tokio::test]
async fn a_store_error_is_reported_and_classified() {
    let (store, mut reader) = store_and_stream().await;
    let db = DatabaseName::parse(unique_name("err")).unwrap();
    store.create_database(&db).await.unwrap();
    store.transact(&commit(&db, "e", 2)).await.unwrap();
    let heads = head_records(&mut reader, &[db.as_str()]).await;
    // The same client on a table that does not exist.
    let wrong = Store::new(
        store.client().clone(),
        StoreConfig::new(unique_name("missing")),
    );
    let report = handle(
        &wrong,
        &batch(heads.clone()),
        Deadline::after(Duration::from_secs(60)),
    )
    .await
    .unwrap();
    assert_eq!(reported(&report), [heads[0].change.sequence_number.clone()]);
    let error = report.databases[0].result.as_ref().unwrap_err();
    assert_eq!(failure_kind(error), FailureKind::Permanent, "{error}");
}
