//! The `local-runner` binary as `make demo` and `make dev` use it: it starts
//! its own moto and tansu, runs the demo scenario end to end (this is the
//! demo in `make test`), serves until Ctrl-C, and leaves nothing running.

use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

mod common;

use common::wait_for_stack_env;
use evidentsource_local_runner::{http, stack::read_env_file};
use evidentsource_local_servers::emf;
use evidentsource_runtime::metrics::Bounds;

const RUNNER: &str = env!("CARGO_BIN_EXE_local-runner");
const DEMO: &str = env!("CARGO_BIN_EXE_demo");

/// A scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("local-runner-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The runner with the settings a user's shell might carry removed.
fn runner(stack_env: &Path) -> Command {
    let mut command = Command::new(RUNNER);
    for var in [
        "DYNAMODB_ENDPOINT",
        "KAFKA_BROKERS",
        "TABLE_NAME",
        "BASE_URI",
        "EVIDENTSOURCE_API_PORT",
        "TRANSACTION_PROPOSALS_KAFKA_TOPIC",
        "DATABASE_EVENTS_KAFKA_TOPIC",
        "ASYNC_COMMANDS_KAFKA_TOPIC",
        "ASYNC_RESPONSES_KAFKA_TOPIC",
        "EVIDENTSOURCE_TEMPLATE_PARAMETERS",
    ] {
        command.env_remove(var);
    }
    command.env("EVIDENTSOURCE_STACK_ENV", stack_env);
    command
}

fn port_of(address: &str) -> u16 {
    address.rsplit(':').next().unwrap().parse().unwrap()
}

fn assert_closed(what: &str, address: &str) {
    let port = port_of(address);
    let until = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < until, "{what} still listening on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_demo_passes_end_to_end_and_nothing_keeps_running() {
    let dir = scratch("demo");
    let stack_env = dir.join("stack.env");
    let metrics = dir.join("metrics.jsonl");
    // The command sees the stack's variables and the file; then the demo.
    let output = runner(&stack_env)
        .env("EVIDENTSOURCE_METRICS_FILE", &metrics)
        .args(["--", "sh", "-c"])
        .arg(format!(
            "env > '{0}/env.txt' && cp \"$EVIDENTSOURCE_STACK_ENV\" '{0}/stack-copy.env' && exec '{DEMO}'",
            dir.display()
        ))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("Demo passed: 15 checks."), "{stdout}");
    assert!(!stdout.contains("   FAIL "), "{stdout}");
    assert_eq!(stdout.matches("   ok   ").count(), 15, "{stdout}");
    for expected in [
        "<- Database { name: ",
        "<- error: 409 FAILED_PRECONDITION (conditions[0])",
        // The async withdrawal's response, awaited.
        "<- Batch(BatchSummary { ",
        // The DCB loop: the teller's append refuses the first decision.
        "decision 1: 4 events, balance 120",
        "decision 2: 5 events, balance 70",
        "<- Appended(BatchSummary { ",
        "com.evidentsource.database.created.v1",
        "com.evidentsource.batch.transacted.v1",
        "com.evidentsource.database.deleted.v1",
    ] {
        assert!(stdout.contains(expected), "{expected} missing:\n{stdout}");
    }

    let file = read_env_file(&dir.join("stack-copy.env")).unwrap();
    let get = |k: &str| {
        file.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k} missing from stack.env: {file:?}"))
    };
    let env = std::fs::read_to_string(dir.join("env.txt")).unwrap();
    for (k, v) in &file {
        assert!(
            env.contains(&format!("{k}={v}\n")),
            "{k} not passed to the command"
        );
    }
    assert_eq!(get("TABLE_NAME"), "evidentsource");
    assert_eq!(
        get("DATABASE_EVENTS_KAFKA_TOPIC"),
        "evidentsource-database-events"
    );
    assert_eq!(
        get("ASYNC_COMMANDS_KAFKA_TOPIC"),
        "evidentsource-async-commands"
    );
    assert_eq!(
        get("ASYNC_RESPONSES_KAFKA_TOPIC"),
        "evidentsource-async-responses"
    );
    assert_eq!(
        get("TRANSACTION_PROPOSALS_KAFKA_TOPIC"),
        "evidentsource-transaction-proposals"
    );

    check_metrics(&metrics);

    // Stopped: the API, moto and tansu, and the file is gone.
    assert_closed("the API", &get("API_URL"));
    assert_closed("moto", &get("DYNAMODB_ENDPOINT"));
    assert_closed("tansu", &get("KAFKA_BROKERS"));
    assert!(!stack_env.exists(), "stack.env left behind");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_commands_status_is_the_runners_and_bad_settings_are_named() {
    let dir = scratch("status");
    // Deployed with the provisioned poller: the failure queue exists in
    // moto and its URL is in the command's environment.
    let output = runner(&dir.join("stack.env"))
        .env(
            "EVIDENTSOURCE_TEMPLATE_PARAMETERS",
            "AsyncCommandsPollerMode=Provisioned AsyncCommandsMaximumRetryAttempts=2",
        )
        .args([
            "--",
            "sh",
            "-c",
            "case \"$ASYNC_COMMANDS_FAILURE_QUEUE_URL\" in */AsyncCommandsFailureQueue) exit 3;; *) exit 4;; esac",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{:?}", text(&output));

    // A parameter the template refuses is named before anything starts.
    for (parameters, words) in [
        ("AsyncCommandsPollerMode=Always", "AsyncCommandsPollerMode"),
        (
            "AsyncCommandsMaximumRetryAttempts=-1",
            "AsyncCommandsMaximumRetryAttempts",
        ),
        ("Provisioned", "EVIDENTSOURCE_TEMPLATE_PARAMETERS"),
    ] {
        let started = Instant::now();
        let output = runner(&dir.join("stack.env"))
            .env("EVIDENTSOURCE_TEMPLATE_PARAMETERS", parameters)
            .output()
            .unwrap();
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(words), "{parameters}: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "servers were started"
        );
    }

    let started = Instant::now();
    let output = runner(&dir.join("stack.env"))
        .env("EVIDENTSOURCE_API_PORT", "eighty")
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("EVIDENTSOURCE_API_PORT"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "servers were started"
    );

    let output = runner(&dir.join("stack.env")).arg("--").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("usage"));
    let _ = std::fs::remove_dir_all(dir);
}

/// Sends `request` as is and reads until the server closes.
async fn raw_exchange(port: u16, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("no answer within 30 s")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn dev_mode_serves_until_ctrl_c_then_stops_everything() {
    let dir = scratch("dev");
    let stack_env = dir.join("stack.env");
    let api_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = runner(&stack_env)
        .env("EVIDENTSOURCE_API_PORT", api_port.to_string())
        .env("TABLE_NAME", "dev-table")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_stack_env(&mut child, &stack_env).await;
    let file = read_env_file(&stack_env).unwrap();
    let get = |k: &str| file.iter().find(|(key, _)| key == k).unwrap().1.clone();
    let api = get("API_URL");
    assert_eq!(api, format!("http://127.0.0.1:{api_port}"));
    assert_eq!(get("TABLE_NAME"), "dev-table");

    // Through the gateway to the function, and the gateway's own 404.
    let created = http::send(&api, "POST", "/databases", Some(r#"{"name": "dev-db"}"#))
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    // Published: the stream source's checkpoint is next to stack.env.
    let checkpoint = dir.join("stream-checkpoint.json");
    let until = Instant::now() + Duration::from_secs(60);
    while !checkpoint.exists() {
        assert!(Instant::now() < until, "no stream checkpoint within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing = http::send(&api, "GET", "/databases/nothing-here", None)
        .await
        .unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], "NOT_FOUND");
    let off_route = http::send(&api, "GET", "/elsewhere", None).await.unwrap();
    assert_eq!(off_route.status, 404);
    assert_eq!(off_route.json()["message"], "Not Found");
    // A malformed Host is API Gateway's 400 (it once closed the connection
    // unanswered), and the API serves on.
    let answer = raw_exchange(
        api_port,
        b"GET /databases/dev-db HTTP/1.1\r\nHost: bad host\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.ends_with(r#"{"message":"Bad Request"}"#), "{answer}");
    let again = http::send(&api, "GET", "/databases/dev-db", None)
        .await
        .unwrap();
    assert_eq!(again.status, 200, "{}", again.text());

    // Ctrl-C.
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < until, "still running 30 s after Ctrl-C");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}");
    let mut banner = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut banner).unwrap();
    assert!(banner.contains(&api), "{banner}");
    assert!(
        banner.contains("curl -s -X POST \"$API_URL/databases\""),
        "{banner}"
    );
    assert!(banner.contains("database-events-consumer"), "{banner}");
    assert_closed("the API", &api);
    assert_closed("moto", &get("DYNAMODB_ENDPOINT"));
    assert_closed("tansu", &get("KAFKA_BROKERS"));
    assert!(!stack_env.exists(), "stack.env left behind");
    assert!(checkpoint.exists(), "the checkpoint outlives the stack");
    let _ = std::fs::remove_dir_all(dir);
}

/// Every function the demo ran emitted EMF records (one per invocation)
/// that the EMF schema and the contract's rules accept, and they say what
/// the demo did: commits and the refused condition, records published
/// with their age, events indexed, commands answered.
fn check_metrics(path: &Path) {
    let outcomes: Vec<&str> = [
        evidentsource_command_ingestion::metrics::OUTCOMES,
        evidentsource_stream_publisher::metrics::OUTCOMES,
        evidentsource_indexer::metrics::OUTCOMES,
        evidentsource_async_commands::metrics::OUTCOMES,
    ]
    .concat();
    let codes: Vec<&str> = evidentsource_domain::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    let functions = [
        evidentsource_command_ingestion::metrics::FUNCTION,
        evidentsource_stream_publisher::metrics::FUNCTION,
        evidentsource_indexer::metrics::FUNCTION,
        evidentsource_async_commands::metrics::FUNCTION,
    ];
    let bounds = Bounds {
        functions: &functions,
        outcomes: &outcomes,
        error_codes: &codes,
    };
    let records = emf::check_file(path, &bounds).unwrap_or_else(|e| panic!("{e}"));
    let of = |function: &str| -> Vec<&serde_json::Value> {
        records
            .iter()
            .filter(|r| r["FunctionName"] == function)
            .collect()
    };
    let sum = |function: &str, metric: &str| -> f64 {
        of(function).iter().filter_map(|r| r[metric].as_f64()).sum()
    };
    for function in functions {
        assert!(!of(function).is_empty(), "no record from {function}");
    }
    assert!(sum("command-ingestion", "Commits") >= 1.0);
    assert!(
        of("command-ingestion")
            .iter()
            .any(|r| r["ConditionFailures"] == 1.0
                && r["ErrorCode"] == "FAILED_PRECONDITION"
                && r["Outcome"] == "client_error"),
        "the refused append is not counted"
    );
    assert!(sum("stream-publisher", "RecordsPublished") >= 1.0);
    assert!(
        of("stream-publisher")
            .iter()
            .any(|r| r["NewestRecordAge"].is_number()),
        "no commit-to-Kafka age"
    );
    assert!(sum("indexer", "EventsIndexed") >= 1.0);
    assert!(
        of("indexer").iter().any(|r| r["IndexLag"].is_number()),
        "no index lag"
    );
    assert!(sum("async-commands", "Commands") >= 1.0);
    assert!(
        of("async-commands")
            .iter()
            .any(|r| r["ResponseLatency"].is_number()),
        "no response latency"
    );
}
