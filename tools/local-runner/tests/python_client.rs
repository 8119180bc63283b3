//! The Python client (clients/python) against the real function behind the
//! local API Gateway: runs its unittest suite (clients/python/tests) with
//! `API_URL` pointing at an API served in-process over moto, with the
//! examples' plainly installed venv (`make examples-deps`), and holds it to
//! exit 0 having run its local-stack tests (none skipped).
//!
//! `EVIDENTSOURCE_PYTHON` overrides the interpreter (a development venv).

use std::process::Command;

use evidentsource_local_servers::workspace_root;

mod common;

use common::api::serve_api;

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
    let (url, _stop) = serve_api().await;
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
