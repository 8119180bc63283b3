//! The Node client (clients/node) against the real function behind the
//! local API Gateway, over moto: its own test suite (`node --test
//! clients/node/test/`) runs as a child process with `API_URL` pointing at
//! the API served here. The suite covers every route's typed answers,
//! idempotent retries, paging, the DCB loop under contention, retries
//! against a scripted server, and SigV4 signing.

use std::time::Duration;

use evidentsource_local_servers::workspace_root;

mod common;

use common::api::serve_api;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_client_passes_its_suite_against_the_local_api() {
    let root = workspace_root();
    let client = root.join("clients/node");
    // The signer is the last dependency npm lays down for the client: its
    // presence means `npm ci` ran.
    let installed = client.join("node_modules/@smithy/signature-v4/package.json");
    assert!(
        installed.exists(),
        "the Node client's dependencies are missing ({}): run `make examples-deps` (make test does)",
        installed.display()
    );

    let (url, _stop) = serve_api().await;
    // Bounded: a client that waits forever fails this test, not the run.
    let run = tokio::process::Command::new("node")
        .args(["--test", "--test-reporter=spec", "test/"])
        .current_dir(&client)
        .env("API_URL", &url)
        // The signing tests bring their own credentials; nothing from the
        // environment may leak into what they compute.
        .env_remove("AWS_PROFILE")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("node --test clients/node/test/ did not finish within 300 s")
        .expect("node runs (Node.js 18+ is needed for the Node client)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Shown with --nocapture (the contention test says how hard it raced).
    println!("{text}");
    assert!(
        output.status.success(),
        "node --test clients/node/test/ failed ({}):\n{text}",
        output.status
    );
    // A suite that ran nothing, or skipped its API tests (API_URL not
    // seen), must not pass for one that ran everything.
    assert!(
        text.contains("ℹ fail 0") && text.contains("ℹ skipped 0") && !text.contains("ℹ tests 0\n"),
        "{text}"
    );
}
