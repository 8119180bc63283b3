//! The Python client (clients/python) against the real function behind the
//! local API Gateway: runs its unittest suite (clients/python/tests) with
//! `API_URL` pointing at an API served in-process over moto, with the
//! examples' plainly installed venv (`make examples-deps`), and holds it to
//! exit 0 having run its local-stack tests (none skipped).
//!
//! `EVIDENTSOURCE_PYTHON` overrides the interpreter (a development venv).

use std::{process::Command, sync::Arc, time::Duration};

use evidentsource_command_ingestion::App;
use evidentsource_local_runner::api::{self, Gateway};
use evidentsource_local_servers::{dynamodb_client, shared, unique_name, workspace_root};
use evidentsource_storage::{Store, StoreConfig, table::create_table};
use tokio::{net::TcpListener, sync::watch};

/// The API on a free port over a table of its own; serves until the
/// sender is dropped. (The same as tests/client.rs's.)
async fn api() -> (String, watch::Sender<bool>) {
    let client = dynamodb_client(&shared().dynamodb_endpoint);
    let table = unique_name("client");
    create_table(&client, &table).await.unwrap();
    let app = Arc::new(App::new(Store::new(client, StoreConfig::new(table))));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = watch::channel(false);
    let gateway = Gateway {
        function_timeout: Duration::from_secs(15),
        integration_timeout: Duration::from_secs(20),
    };
    tokio::spawn(api::serve(listener, app, gateway, stopped));
    (url, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_clients_tests_pass_against_the_local_api() {
    let root = workspace_root();
    let python = std::env::var_os("EVIDENTSOURCE_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join(".venv-examples/bin/python"));
    assert!(
        python.exists(),
        "the examples' Python venv is missing ({}): run `make examples-deps` (make test does)",
        python.display()
    );
    let (url, _stop) = api().await;
    let client_dir = root.join("clients/python");
    let mut command = Command::new(&python);
    command
        .args(["-m", "unittest", "discover", "-s", "tests", "-v"])
        .current_dir(&client_dir)
        .env("API_URL", &url)
        .env("PYTHONPATH", &client_dir)
        // The signing tests bring their own credentials; none of the
        // caller's may leak into them.
        .env_remove("AWS_PROFILE");
    // The child blocks this thread; the API serves on the runtime's other.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("run the Python tests");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the Python client's tests failed ({:?}):\n{text}",
        output.status
    );
    // A local-stack test that skipped (no API_URL) proved nothing:
    // unittest's summary then reads `OK (skipped=N)`.
    assert!(!text.contains("skipped="), "a test was skipped:\n{text}");
    assert!(text.contains("\nOK"), "no unittest summary:\n{text}");
}
