//! A reclaim run against moto emits one EMF record that the EMF schema and
//! the contract's rules accept, counting the database it reclaimed.

use std::time::Duration;

use evidentsource_domain::{DatabaseName, Limits, Transaction};
use evidentsource_local_servers::{dynamodb_client, emf, shared, unique_name};
use evidentsource_proto::{TransactRequest, cloudevents::CloudEvent};
use evidentsource_reclaim::{FUNCTION, OUTCOMES, run};
use evidentsource_runtime::metrics::{Bounds, Metrics, set_sink};
use evidentsource_storage::{Store, StoreConfig, table::create_table};

#[tokio::test]
async fn a_run_emits_one_checked_record_counting_what_it_reclaimed() {
    let client = dynamodb_client(&shared().dynamodb_endpoint);
    let table = unique_name("reclaim");
    create_table(&client, &table).await.unwrap();
    let mut config = StoreConfig::new(table);
    // The delete leaves every item to the queue, and the run may take the
    // index's too.
    config.reclaim_budget = Duration::ZERO;
    config.index_grace = Duration::ZERO;
    let store = Store::new(client, config);

    // A database with an event, deleted: its items wait in the queue.
    let name = DatabaseName::parse(unique_name("db")).unwrap();
    store.create_database(&name).await.unwrap();
    let request = TransactRequest {
        database_name: name.to_string(),
        events: vec![CloudEvent {
            id: "e-1".into(),
            source: "https://example.com/shop/orders".into(),
            spec_version: "1.0".into(),
            r#type: "com.shop.placed".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let tx = Transaction::from_request(request, &Limits::default()).unwrap();
    store.transact(&tx).await.unwrap();
    store.delete_database(&name).await.unwrap();

    let path = std::env::temp_dir().join(format!("reclaim-metrics-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    assert!(set_sink(Box::new(std::fs::File::create(&path).unwrap())));
    let (result, metrics) = run(&store, Duration::from_secs(20), Metrics::from_env(FUNCTION)).await;
    metrics.emit();
    let result = result.unwrap();

    let records = emf::check_file(
        &path,
        &Bounds {
            functions: &[FUNCTION],
            outcomes: OUTCOMES,
            error_codes: &[],
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&path);
    assert_eq!(records.len(), 1, "one record per invocation: {records:?}");
    let record = &records[0];
    assert_eq!(record["FunctionName"], FUNCTION);
    assert_eq!(record["Outcome"], "ok");
    assert_eq!(
        record["DatabasesReclaimed"],
        result["completed"].as_f64().unwrap()
    );
    assert!(
        record["DatabasesReclaimed"].as_f64().unwrap() >= 1.0,
        "{record}"
    );
    assert!(
        record["ItemsReclaimed"].as_f64().unwrap() >= 1.0,
        "{record}"
    );
    // A database name is never a dimension (nor anywhere in the record).
    assert!(!record.to_string().contains(name.as_str()), "{record}");
}
