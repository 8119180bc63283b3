//! The sample Kafka events in `events/` (MSK and self-managed shapes) run
//! through the handler against moto and tansu.

mod common;

use std::time::Duration;

use aws_lambda_events::kafka::KafkaEvent;
use common::*;
use evidentsource_local_servers::workspace_root;
use evidentsource_proto::{ErrorCode, command_response::Result as Outcome};
use tokio::time::Instant;

fn sample(file: &str) -> KafkaEvent {
    let path = workspace_root().join("events").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_events_are_answered() {
    let setup = Setup::new().await;
    let processor = setup.processor();
    let deadline = Instant::now() + Duration::from_secs(60);

    let msk = sample("msk-async-commands.json");
    assert_eq!(msk.event_source.as_deref(), Some("aws:kafka"));
    let report = processor.handle(&msk, deadline).await.unwrap();
    assert_eq!((report.executed, report.refused), (2, 0));
    let managed = sample("self-managed-kafka-async-commands.json");
    assert_eq!(managed.event_source.as_deref(), Some("SelfManagedKafka"));
    let report = processor.handle(&managed, deadline).await.unwrap();
    assert_eq!((report.executed, report.refused), (2, 1));

    let responses = read_responses(&setup.brokers, &setup.responses, 4).await;
    let by_id = by_correlation(&responses);
    let result = |id: &str| by_id[id][0].parsed.response.result.clone();
    match result("3f1e9a52-create-orders") {
        Some(Outcome::Database(d)) => assert_eq!((d.name.as_str(), d.revision), ("orders", 0)),
        other => panic!("{other:?}"),
    }
    match result("7c2d0b11-checkout-1001") {
        Some(Outcome::BatchSummary(s)) => assert_eq!((s.basis, s.revision), (0, 1)),
        other => panic!("{other:?}"),
    }
    match result("a9b8c7d6-delete-orders") {
        Some(Outcome::Database(d)) => assert_eq!(d.revision, 1),
        other => panic!("{other:?}"),
    }
    let refused = &by_id["e5f4a3b2-not-a-command"][0].parsed;
    let (code, message) = refused.error().unwrap();
    assert_eq!(code, ErrorCode::InvalidArgument);
    assert!(message.starts_with("ce_type"), "{message}");
}
