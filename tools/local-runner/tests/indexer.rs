//! The indexer through the runner, as Lambda would run it: commits made
//! over the runner's HTTP API reach the table's stream, the runner's
//! second stream source (the template's filter, batches, partial batch
//! responses, its own checkpoint) invokes the indexer, and the watermark
//! reaches the head. A database deleted and created again starts a fresh
//! watermark. Real moto and tansu (the test binary's shared servers).

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

mod common;

use common::wait_for_stack_env;
use evidentsource_local_runner::{http, stack::read_env_file};
use evidentsource_local_servers::{dynamodb_client, shared, unique_name};
use evidentsource_storage::{Store, StoreConfig, index::read::IndexedHead};

const RUNNER: &str = env!("CARGO_BIN_EXE_local-runner");

/// The runner on the shared servers, with its own table, topics, consumer
/// group and files; stopped (SIGINT) when dropped.
struct Runner {
    child: Child,
    dir: PathBuf,
    api: String,
}

impl Runner {
    async fn start(table: &str) -> Runner {
        let servers = shared();
        let dir = std::env::temp_dir().join(unique_name("runner-indexer"));
        std::fs::create_dir_all(&dir).unwrap();
        let stack_env = dir.join("stack.env");
        let mut command = Command::new(RUNNER);
        command
            .env("DYNAMODB_ENDPOINT", &servers.dynamodb_endpoint)
            .env("KAFKA_BROKERS", &servers.kafka_brokers)
            .env("TABLE_NAME", table)
            .env("EVIDENTSOURCE_STACK_ENV", &stack_env)
            .env("ASYNC_COMMANDS_CONSUMER_GROUP", unique_name("group"))
            .env("EVIDENTSOURCE_TOPIC_PARTITIONS", "1")
            .env_remove("EVIDENTSOURCE_API_PORT")
            .env_remove("BASE_URI")
            .env_remove("EVIDENTSOURCE_TEMPLATE_PARAMETERS")
            .env_remove("EVIDENTSOURCE_STREAM_CHECKPOINT")
            .env_remove("EVIDENTSOURCE_INDEXER_CHECKPOINT")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for var in [
            "TRANSACTION_PROPOSALS_KAFKA_TOPIC",
            "DATABASE_EVENTS_KAFKA_TOPIC",
            "ASYNC_COMMANDS_KAFKA_TOPIC",
            "ASYNC_RESPONSES_KAFKA_TOPIC",
        ] {
            command.env(var, unique_name(&var.to_lowercase().replace('_', "-")));
        }
        let mut child = command.spawn().unwrap();
        wait_for_stack_env(&mut child, &stack_env).await;
        let vars = read_env_file(&stack_env).unwrap();
        let api = vars.iter().find(|(k, _)| k == "API_URL").unwrap().1.clone();
        Runner { child, dir, api }
    }

    async fn send(&self, method: &str, path: &str, body: Option<&str>) -> u16 {
        let answer = http::send(&self.api, method, path, body).await.unwrap();
        assert!(answer.status < 300, "{method} {path}: {}", answer.text());
        answer.status
    }

    async fn create(&self, db: &str) {
        let body = format!(r#"{{"name": "{db}"}}"#);
        self.send("POST", "/databases", Some(&body)).await;
    }

    /// Commits `n` events to `db` (one transaction).
    async fn commit(&self, db: &str, tag: &str, n: usize) {
        let events: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#"{{"specversion": "1.0", "id": "{tag}-{i}", "source": "https://example.com/shop/orders",
                        "type": "com.shop.placed", "subject": "o-{i}"}}"#
                )
            })
            .collect();
        let body = format!(r#"{{"events": [{}]}}"#, events.join(","));
        self.send(
            "POST",
            &format!("/databases/{db}/transactions"),
            Some(&body),
        )
        .await;
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let until = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits (at most 60 s) until `db`'s watermark reaches its head.
async fn indexed(store: &Store, db: &str) -> IndexedHead {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let now = store.head_and_watermark(db).await.unwrap().unwrap();
        if now.watermark == now.head.revision && now.head.revision > 0 {
            return now;
        }
        assert!(
            Instant::now() < until,
            "not indexed within 60 s: watermark {} of head {}",
            now.watermark,
            now.head.revision
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_over_http_are_indexed_and_a_recreated_database_starts_afresh() {
    let table = unique_name("runner-indexer");
    let runner = Runner::start(&table).await;
    let store = Store::new(
        dynamodb_client(&shared().dynamodb_endpoint),
        StoreConfig::new(&table),
    );
    let db = unique_name("shop");
    runner.create(&db).await;
    for round in 0..3 {
        runner.commit(&db, &format!("a{round}"), 3).await;
    }
    let first = indexed(&store, &db).await;
    assert_eq!((first.watermark, first.head.revision), (9, 9));

    // Deleted and created again: a new incarnation, indexed from 0 to its
    // own head (2), not from the old watermark (9).
    runner
        .send("DELETE", &format!("/databases/{db}"), None)
        .await;
    runner.create(&db).await;
    runner.commit(&db, "b", 2).await;
    let second = indexed(&store, &db).await;
    assert_ne!(second.head.incarnation, first.head.incarnation);
    assert_eq!((second.watermark, second.head.revision), (2, 2));
    drop(runner);
}
