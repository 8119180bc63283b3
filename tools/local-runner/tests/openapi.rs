//! docs/openapi.yaml against the implementation: the real function behind
//! the local API Gateway (as `make dev` serves it), over moto and tansu,
//! with async submit configured. scripts/check_openapi.py (openapi-core, in
//! the project's .venv) sends every documented example and validates each
//! request and response against the document; it gets what the code owns —
//! the route table and the fields the JSON parsers know — from here, so a
//! route or a field on one side only fails it.

use std::{process::Command, sync::Arc, time::Duration};

use evidentsource_command_ingestion::{
    App, MAX_BODY_BYTES, ROUTES,
    json::{CREATE_FIELDS, QUERY_FIELDS, TRANSACT_FIELDS},
    submit::{AsyncSubmit, SubmitConfig},
};
use evidentsource_kafka_config::{KafkaContext, KafkaSettings};
use evidentsource_local_runner::api::{self, Gateway};
use evidentsource_local_servers::{
    Venv, create_topic, dynamodb_client, shared, unique_name, workspace_root,
};
use evidentsource_storage::{Store, StoreConfig, table::create_table};
use serde_json::json;
use tokio::{net::TcpListener, sync::watch};

/// What the code serves, for the drift checks: routes as (method, path
/// template), each JSON body's fields keyed by its route, and the body
/// size limit.
fn code_facts() -> serde_json::Value {
    json!({
        "routes": ROUTES,
        "max_body_bytes": MAX_BODY_BYTES,
        "request_fields": {
            "POST /databases": CREATE_FIELDS,
            "POST /databases/{name}/transactions": TRANSACT_FIELDS,
            "POST /databases/{name}/query": QUERY_FIELDS,
        },
    })
}

async fn app() -> App {
    let servers = shared();
    let client = dynamodb_client(&servers.dynamodb_endpoint);
    let table = unique_name("openapi");
    create_table(&client, &table).await.unwrap();
    let topic = unique_name("openapi-commands");
    create_topic(&servers.kafka_brokers, &topic, 1)
        .await
        .unwrap();
    let brokers = servers.kafka_brokers.clone();
    let settings =
        KafkaSettings::from_lookup(|k| (k == "KAFKA_BROKERS").then(|| brokers.clone())).unwrap();
    let context = KafkaContext::for_settings(&settings, None);
    let submit = AsyncSubmit::new(
        SubmitConfig {
            base_uri: "https://api.example.com".into(),
            topic,
            kafka: settings,
            timeout: Duration::from_secs(10),
        },
        context,
    )
    .unwrap();
    App::new(Store::new(client, StoreConfig::new(table))).with_async_submit(submit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_example_matches_the_document_and_the_routes_agree() {
    let python = Venv::locate()
        .expect("run `make venv` first")
        .root()
        .join("bin/python");
    let (stop, stopped) = watch::channel(false);
    let gateway = Gateway {
        function_timeout: Duration::from_secs(15),
        integration_timeout: Duration::from_secs(20),
    };
    let serve = |app: App| {
        let stopped = stopped.clone();
        async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(api::serve(listener, Arc::new(app), gateway, stopped));
            url
        }
    };
    let app = app().await;
    // The same API deployed without Kafka (KAFKA_BROKERS unset): async
    // submit answers 503.
    let no_kafka = App::new(app.store().clone());
    let base_url = serve(app).await;
    let no_kafka_url = serve(no_kafka).await;

    let root = workspace_root();
    let facts = std::env::temp_dir().join(format!("openapi-code-{}.json", std::process::id()));
    std::fs::write(&facts, code_facts().to_string()).unwrap();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(root.join("scripts/check_openapi.py"))
            .arg(root.join("docs/openapi.yaml"))
            .arg(&base_url)
            .arg(&facts)
            .arg(&no_kafka_url)
            .output()
    })
    .await
    .unwrap()
    .expect("python from .venv");
    let _ = stop.send(true);
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Every check, for `--nocapture` and the log of a failing run.
    println!("{stdout}");
    let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        output.status.success() && failed.is_empty(),
        "docs/openapi.yaml disagrees with the implementation:\n{}\n--- full output\n{stdout}\n{}",
        failed.join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
    // Not vacuous: the examples were sent and checked.
    assert!(
        stdout.lines().filter(|l| l.starts_with("ok")).count() > 40,
        "{stdout}"
    );
}
