//! The README's quick start runs as written: the block after the
//! `<!-- quick start: ... -->` marker, with bash from the repository root,
//! against the API served in-process (its `.local/stack.env` is this
//! test's own file). It uses the Python and Node clients as installed by
//! `make examples-deps`.

use std::{process::Command, time::Duration};

use evidentsource_local_servers::workspace_root;

mod common;

use common::api::serve_api;

const MARKER: &str = "<!-- quick start:";

/// The first ```sh block after the marker.
fn quick_start(readme: &str) -> String {
    let after = &readme[readme
        .find(MARKER)
        .expect("the README's quick start marker")..];
    let body = &after[after.find("```sh\n").expect("a sh block after the marker") + 6..];
    body[..body.find("\n```").expect("the block's end")].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_quick_start_runs_as_written() {
    let root = workspace_root();
    let script = quick_start(&std::fs::read_to_string(root.join("README.md")).unwrap());
    assert!(
        script.contains(". .local/stack.env"),
        "the quick start no longer reads .local/stack.env:\n{script}"
    );
    let (url, _stop) = serve_api().await;
    let env_file = std::env::temp_dir().join(format!("quick-start-{}.env", std::process::id()));
    std::fs::write(&env_file, format!("API_URL={url}\n")).unwrap();
    let script = script.replace(".local/stack.env", &env_file.display().to_string());

    let mut command = Command::new("bash");
    command
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(&root)
        .env_remove("API_URL");
    let run = tokio::task::spawn_blocking(move || command.output());
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the quick start finished within 120 s")
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_file(&env_file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n(missing clients? run `make examples-deps`)",
        output.status
    );
    // Python appended the opening at revision 1; Node read it back and
    // deleted the database at that revision.
    assert!(stdout.contains("'revision': 1"), "{stdout}");
    assert!(stdout.contains("as of 1 [ 'account-opened' ]"), "{stdout}");
    assert!(stdout.contains("name: 'accounts'"), "{stdout}");
}

#[test]
fn the_block_after_the_marker_is_read() {
    let readme = "text\n```sh\nnot this\n```\n<!-- quick start: x -->\n```sh\necho a\necho b\n```\n```sh\nnor this\n```";
    assert_eq!(quick_start(readme), "echo a\necho b");
}
