//! The Rust client's async half against the whole local stack: the runner
//! in dev mode (its own moto and tansu, the async commands function behind
//! its Kafka event source, the API), and `AsyncCommands` submitting to it
//! and awaiting the responses, as a user's service would.

use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

mod common;

use common::wait_for_stack_env;
use evidentsource_client::{
    Client, ClientError, Condition, ErrorCode, Event, Selector,
    kafka::{AsyncCommand, AsyncCommands, CommandOutcome, CommandTopics},
};
use evidentsource_local_runner::stack::read_env_file;
use evidentsource_local_servers::unique_name;
use rdkafka::ClientConfig;
use serde_json::json;

const RUNNER: &str = env!("CARGO_BIN_EXE_local-runner");
const WAIT: Duration = Duration::from_secs(60);

/// The runner serving until dropped (then Ctrl-C, and it stops
/// everything it started).
struct Stack {
    child: Child,
    vars: HashMap<String, String>,
    dir: PathBuf,
}

impl Stack {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("client-async-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let stack_env = dir.join("stack.env");
        let mut command = Command::new(RUNNER);
        // Settings a user's shell might carry: the runner picks its own.
        for var in [
            "DYNAMODB_ENDPOINT",
            "KAFKA_BROKERS",
            "TABLE_NAME",
            "EVIDENTSOURCE_API_PORT",
            "ASYNC_COMMANDS_KAFKA_TOPIC",
            "ASYNC_RESPONSES_KAFKA_TOPIC",
            "DATABASE_EVENTS_KAFKA_TOPIC",
            "EVIDENTSOURCE_TEMPLATE_PARAMETERS",
        ] {
            command.env_remove(var);
        }
        let mut child = command
            .env("EVIDENTSOURCE_STACK_ENV", &stack_env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_stack_env(&mut child, &stack_env).await;
        let vars = read_env_file(&stack_env).unwrap().into_iter().collect();
        Stack { child, vars, dir }
    }

    fn var(&self, name: &str) -> &str {
        self.vars
            .get(name)
            .unwrap_or_else(|| panic!("{name} not in stack.env"))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let until = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn seat(n: u32) -> Event {
    Event::new(
        "https://example.com/seats",
        "seat-reserved",
        format!("seat-{n}"),
    )
    .subject("flight-7")
    .data(json!({ "seat": n }))
}

fn flight_at_most(revision: u64) -> Vec<Condition> {
    vec![Condition::max(
        Selector::SubjectEquals("flight-7".into()),
        revision,
    )]
}

fn batch_of(outcome: Result<CommandOutcome, ClientError>) -> (u64, u64, String) {
    match outcome {
        Ok(CommandOutcome::Batch(b)) => (b.basis, b.revision, b.id),
        other => panic!("not a batch: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_submitted_and_their_responses_awaited() {
    let stack = Stack::start().await;
    let mut kafka = ClientConfig::new();
    kafka.set("bootstrap.servers", stack.var("KAFKA_BROKERS"));
    let topics = CommandTopics {
        commands: stack.var("ASYNC_COMMANDS_KAFKA_TOPIC").to_owned(),
        responses: stack.var("ASYNC_RESPONSES_KAFKA_TOPIC").to_owned(),
    };
    let commands = AsyncCommands::connect(&kafka, topics).await.unwrap();
    let http = Client::new(stack.var("API_URL")).unwrap();
    let db = unique_name("async");

    // create-database answers the database.
    let created = commands
        .execute(&AsyncCommand::CreateDatabase { name: db.clone() }, WAIT)
        .await;
    assert!(
        matches!(&created, Ok(CommandOutcome::Database(d)) if d.name == db && d.revision == 0),
        "{created:?}"
    );

    // A transact answers its batch, as the HTTP API then shows it.
    let reserve = |n: u32, at_most: u64| AsyncCommand::Transact {
        database: db.clone(),
        events: vec![seat(n)],
        conditions: flight_at_most(at_most),
        transaction_id: None,
    };
    let first = batch_of(commands.execute(&reserve(1, 0), WAIT).await);
    assert_eq!((first.0, first.1), (0, 1));
    assert_eq!(http.get_database(&db).await.unwrap().revision, 1);

    // A condition that does not hold: the contract's code, typed.
    let refused = commands.execute(&reserve(2, 0), WAIT).await;
    match &refused {
        Err(e @ ClientError::Command { message, .. }) => {
            assert_eq!(e.code(), Some(ErrorCode::FailedPrecondition));
            assert!(e.is_conflict());
            assert!(message.starts_with("conditions[0]"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    // A response that arrives before anyone awaits it is kept: wait until
    // the commit shows over HTTP, then a while more, then await.
    let submitted = commands.submit(&reserve(2, 1)).await.unwrap();
    let until = Instant::now() + WAIT;
    while http.get_database(&db).await.unwrap().revision < 2 {
        assert!(Instant::now() < until, "the command was not executed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let second = batch_of(
        commands
            .await_response(&submitted.correlation_id, Duration::from_secs(5))
            .await,
    );
    assert_eq!((second.0, second.1), (1, 2));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "it was already there"
    );

    // The same command again under its correlation id (a producer that
    // lost the acknowledgement): answered like the first, committed once.
    let again = AsyncCommand::Transact {
        database: db.clone(),
        events: vec![seat(3)],
        conditions: flight_at_most(2),
        transaction_id: Some(unique_name("tx")),
    };
    let correlation_id = unique_name("corr");
    commands.submit_as(&again, &correlation_id).await.unwrap();
    let once = batch_of(commands.await_response(&correlation_id, WAIT).await);
    commands.submit_as(&again, &correlation_id).await.unwrap();
    let twice = batch_of(commands.await_response(&correlation_id, WAIT).await);
    assert_eq!(once, twice);
    assert_eq!(http.get_database(&db).await.unwrap().revision, 3);

    // Nothing answers a correlation id nobody submitted: a bounded wait.
    let silence = commands
        .await_response(&unique_name("nobody"), Duration::from_secs(2))
        .await;
    assert!(
        matches!(&silence, Err(ClientError::ResponseTimeout { waited, .. }) if *waited == Duration::from_secs(2)),
        "{silence:?}"
    );

    // An event the contract refuses is refused before it is sent.
    let mut bad = seat(4);
    bad.time = Some("noon".into());
    let invalid = commands
        .submit(&AsyncCommand::Transact {
            database: db.clone(),
            events: vec![bad],
            conditions: vec![],
            transaction_id: None,
        })
        .await;
    assert!(
        matches!(&invalid, Err(ClientError::Request(m)) if m.starts_with("events[0].time:")),
        "{invalid:?}"
    );

    // delete-database answers the final state.
    let deleted = commands
        .execute(&AsyncCommand::DeleteDatabase { name: db.clone() }, WAIT)
        .await;
    assert!(
        matches!(&deleted, Ok(CommandOutcome::Database(d)) if d.revision == 3),
        "{deleted:?}"
    );
    assert_eq!(
        http.get_database(&db).await.unwrap_err().code(),
        Some(ErrorCode::NotFound)
    );
}
