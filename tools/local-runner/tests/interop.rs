//! The clients users bring, against the whole suite: the Python
//! (kafka-python, the CloudEvents SDK) and Node (kafkajs, protobufjs)
//! examples under `examples/`, installed plainly by `make examples-deps`,
//! read what `make demo` and their own commands produce.
//!
//! One local stack (the runner starts its own moto and tansu) runs, in
//! order: the demo scenario; the Python and then the Node command producer
//! (create, JSON and protobuf transacts, a failing condition, a malformed
//! command, delete; each waits for its one response); then the Python and
//! the Node consumer read both topics to the end. Each example checks the
//! contract on its own and exits 1 on a violation; this test then holds the
//! two consumers' readings equal to each other and to what the producers
//! were answered.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use evidentsource_local_servers::workspace_root;
use serde_json::Value;

const RUNNER: &str = env!("CARGO_BIN_EXE_local-runner");
const DEMO: &str = env!("CARGO_BIN_EXE_demo");

/// The example clients, or a panic saying how to install them.
struct Clients {
    python: PathBuf,
    node: &'static str,
    examples: PathBuf,
}

impl Clients {
    fn installed() -> Self {
        let root = workspace_root();
        let python = root.join(".venv-examples/bin/python");
        let examples = root.join("examples");
        for (path, what) in [
            (&python, "the examples' Python venv"),
            (
                &examples.join("node/node_modules/kafkajs/package.json"),
                "kafkajs in examples/node/node_modules",
            ),
        ] {
            assert!(
                path.exists(),
                "{what} is missing ({}): run `make examples-deps` (make test does)",
                path.display()
            );
        }
        Clients {
            python,
            node: "node",
            examples,
        }
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (the step that writes it failed)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A database's events as `type basis->revision` lines, for readable asserts.
fn sequence(summary: &Value, database: &str) -> Vec<String> {
    summary["events"][database]
        .as_array()
        .unwrap_or_else(|| panic!("no events of {database}: {summary}"))
        .iter()
        .map(|e| {
            format!(
                "{} {}->{}",
                e["type"].as_str().unwrap(),
                e["basis"],
                e["revision"]
            )
        })
        .collect()
}

#[test]
fn python_and_node_clients_read_and_write_the_suites_topics() {
    let clients = Clients::installed();
    let dir = std::env::temp_dir().join(format!("interop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = |name: &str| dir.join(name).display().to_string();
    let (python, examples) = (clients.python.display(), clients.examples.display());
    let node = clients.node;

    // Each step writes its output to a file; `set -e` stops at the first
    // failing one, whose log the assertion below shows.
    let steps = format!(
        "set -e
'{DEMO}' > '{demo}' 2>&1
cd '{examples}/python'
'{python}' submit_commands.py --database py-orders --summary '{py_submit}' > '{py_submit}.log' 2>&1
cd '{examples}/node'
{node} submit-commands.js --database node-orders --summary '{node_submit}' > '{node_submit}.log' 2>&1
cd '{examples}/python'
'{python}' consume_events.py --until-deleted 3 --summary '{py_read}' > '{py_read}.log' 2>&1
cd '{examples}/node'
{node} consume-events.js --until-deleted 3 --summary '{node_read}' > '{node_read}.log' 2>&1
",
        demo = out("demo.log"),
        py_submit = out("py-submit.json"),
        node_submit = out("node-submit.json"),
        py_read = out("py-read.json"),
        node_read = out("node-read.json"),
    );
    let mut runner = Command::new(RUNNER);
    for var in [
        "DYNAMODB_ENDPOINT",
        "KAFKA_BROKERS",
        "TABLE_NAME",
        "KAFKA_COMPRESSION_TYPE",
        "DATABASE_EVENTS_KAFKA_TOPIC",
        "ASYNC_COMMANDS_KAFKA_TOPIC",
        "ASYNC_RESPONSES_KAFKA_TOPIC",
    ] {
        runner.env_remove(var);
    }
    let output = runner
        .env("EVIDENTSOURCE_STACK_ENV", dir.join("stack.env"))
        .args(["--", "sh", "-c", &steps])
        .output()
        .unwrap();
    if !output.status.success() {
        let logs: String = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                format!("--- {}\n{text}\n", e.path().display())
            })
            .collect();
        panic!(
            "the runner exited {:?}\n{logs}\n--- runner stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // The two consumers read the same thing, event by event.
    let py_read = read_json(&dir.join("py-read.json"));
    let node_read = read_json(&dir.join("node-read.json"));
    assert_eq!(py_read, node_read, "the Python and Node consumers disagree");

    // The producers' databases, as their command responses said.
    for database in ["py-orders", "node-orders"] {
        assert_eq!(
            sequence(&py_read, database),
            [
                "created 0->0",
                "transacted 0->2",
                "transacted 2->3",
                "deleted null->null"
            ],
            "{database}"
        );
    }
    // The demo's database: the scenario's three commits, the async one
    // included, then the DCB step's two (a concurrent deposit, and the
    // withdrawal decided again after its first try was refused).
    let demo: Vec<&String> = py_read["events"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("demo-"))
        .collect();
    assert_eq!(demo.len(), 1, "{py_read}");
    assert_eq!(
        sequence(&py_read, demo[0]),
        [
            "created 0->0",
            "transacted 0->2",
            "transacted 2->3",
            "transacted 3->4",
            "transacted 4->5",
            "transacted 5->6",
            "deleted null->null"
        ]
    );

    // Every command got one response, and the consumers read the same one.
    for file in ["py-submit.json", "node-submit.json"] {
        let submitted = read_json(&dir.join(file));
        let mut steps = BTreeMap::new();
        for (correlation_id, answer) in submitted["responses"].as_object().unwrap() {
            let read = &py_read["responses"][correlation_id];
            for field in ["type", "result", "code", "basis", "revision"] {
                assert_eq!(
                    read[field], answer[field],
                    "{file} {correlation_id} {field}"
                );
            }
            steps.insert(answer["step"].as_str().unwrap().to_owned(), read.clone());
        }
        let codes: Vec<(&str, &Value)> = steps
            .iter()
            .map(|(step, read)| (step.as_str(), &read["code"]))
            .collect();
        assert_eq!(
            codes,
            [
                ("create-database", &Value::Null),
                ("delete-database", &Value::Null),
                ("malformed-transact", &Value::from("INVALID_ARGUMENT")),
                ("transact-conflict", &Value::from("FAILED_PRECONDITION")),
                ("transact-json", &Value::Null),
                ("transact-protobuf", &Value::Null),
            ],
            "{file}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
