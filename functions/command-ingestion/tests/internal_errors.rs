//! A request that fails inside the service (here: the table is missing, as
//! after a wrong deployment) answers 500 with the request id and nothing of
//! DynamoDB's own words, which can name the account, role and table; the
//! log has both, so an operator finds the cause by the id.

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use evidentsource_command_ingestion::App;
use evidentsource_local_servers::{dynamodb_client, shared, unique_name};
use evidentsource_runtime::metrics::Metrics;
use evidentsource_storage::{Store, StoreConfig};
use lambda_http::{Body, Context, RequestExt};
use serde_json::Value;

/// Everything logged, for the assertions below.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_storage_fault_answers_the_request_id_and_logs_the_cause() {
    let captured = Captured::default();
    let writer = captured.clone();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    );
    let table = unique_name("no-such-table");
    let app = App::new(Store::new(
        dynamodb_client(&shared().dynamodb_endpoint),
        StoreConfig::new(&table),
    ));
    let mut context = Context::default();
    context.request_id = "8f1c2a9e-request".into();
    context.deadline = (SystemTime::now() + Duration::from_secs(20))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let request = lambda_http::http::Request::builder()
        .uri("/databases/shop")
        .body(Body::Empty)
        .unwrap()
        .with_lambda_context(context);

    let deadline = app.deadline_of(&request);
    let (response, metrics) = app.handle_measured(request, deadline).await;
    assert_eq!(response.status().as_u16(), 500);
    let body: Value = match response.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(body["code"], "INTERNAL", "{body}");
    assert_eq!(body["request_id"], "8f1c2a9e-request", "{body}");
    let text = body.to_string();
    for secret in [table.as_str(), "ResourceNotFound", "Requested resource"] {
        assert!(!text.contains(secret), "the body shows {secret:?}: {text}");
    }

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("8f1c2a9e-request"), "{log}");
    assert!(
        log.contains("ResourceNotFoundException"),
        "the log keeps the cause: {log}"
    );
    // Every line of the request names its database (the request's span).
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 2, "{log}");
    for line in lines {
        assert!(line.contains("database=\"shop\""), "{line}");
    }

    // The failed request still has its metrics record: a server error
    // with its code, and no database name in it.
    let record = metrics
        .to_metrics(Metrics::new("N", "command-ingestion"))
        .record(0);
    assert_eq!(record["Outcome"], "server_error", "{record}");
    assert_eq!(record["ServerErrors"], 1.0, "{record}");
    assert_eq!(record["ErrorCode"], "INTERNAL", "{record}");
    assert!(!record.to_string().contains("shop"), "{record}");
}
