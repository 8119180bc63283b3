//! The `make demo` scenario, through the public interfaces only and with
//! the Rust client (`clients/rust`) as a user would write it: the HTTP API
//! (`API_URL`), async commands and the database events on Kafka
//! (`KAFKA_BROKERS`, the topic variables). It prints a transcript and
//! checks every answer and, at the end, the database events a consumer
//! reads: Created, a contiguous basis/revision chain, Deleted.

mod dcb;
mod events;

use std::{collections::HashMap, time::Duration};

use evidentsource_client::{
    BatchSummary, Client, ClientError, Condition, ErrorCode, Event, Selector,
    kafka::{AsyncCommand, AsyncCommands, CommandOutcome, CommandTopics},
};
use evidentsource_kafka_config::{KafkaContext, KafkaSettings, Topics};
use rdkafka::ClientConfig;
use serde_json::json;

pub use self::events::{Read, check_sequence};

/// How long the demo waits for something to arrive on a topic.
const TOPIC_WAIT: Duration = Duration::from_secs(90);

/// Where the stack is (the variables of `.local/stack.env`).
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub api_url: String,
    pub topics: Topics,
    /// Every variable, for the Kafka settings (`KAFKA_BROKERS`, ...).
    pub vars: HashMap<String, String>,
}

impl Endpoints {
    pub fn from_vars(vars: HashMap<String, String>) -> Result<Self, String> {
        let api_url = vars
            .get("API_URL")
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or(
                "API_URL is not set (run the demo under local-runner, or start `make dev` first)",
            )?;
        Ok(Endpoints {
            api_url,
            topics: Topics::from_lookup(|k| vars.get(k).cloned()),
            vars,
        })
    }

    /// How to reach the cluster (the suite's `KAFKA_*` settings), with the
    /// context that signs MSK IAM tokens when that is the mechanism.
    async fn kafka(&self) -> Result<(ClientConfig, KafkaContext), String> {
        let mut settings =
            KafkaSettings::from_lookup(|k| self.vars.get(k).cloned()).map_err(|e| e.to_string())?;
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let context = settings.resolve(&aws).await.map_err(|e| e.to_string())?;
        Ok((settings.client_config(), context))
    }
}

/// The transcript and the verdict.
#[derive(Debug, Default)]
pub struct Verdict {
    pub checks: usize,
    pub failures: Vec<String>,
}

impl Verdict {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        let what = what.into();
        self.checks += 1;
        if ok {
            println!("   ok   {what}");
        } else {
            println!("   FAIL {what}");
            self.failures.push(what);
        }
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

fn step(n: u32, title: &str) {
    println!("\n== {n}. {title}");
}

/// Prints what a call answered, in one line.
fn shown<T: std::fmt::Debug>(result: &Result<T, ClientError>) {
    match result {
        Ok(value) => println!("<- {value:?}"),
        Err(e) => println!("<- error: {e}"),
    }
}

fn event(id: &str, ty: &str, amount: i64) -> Event {
    Event::new("https://example.com/bank/accounts", ty, id)
        .subject("account-42")
        .data(json!({ "amount": amount }))
}

fn account() -> Selector {
    Selector::SubjectEquals("account-42".into())
}

fn account_at_most(revision: u64) -> Vec<Condition> {
    vec![Condition::max(account(), revision)]
}

fn chain(b: &Result<BatchSummary, ClientError>) -> Option<(u64, u64)> {
    b.as_ref().ok().map(|b| (b.basis, b.revision))
}

/// Runs the scenario against `endpoints`; Err only when it could not run.
pub async fn run(endpoints: &Endpoints) -> Result<Verdict, String> {
    let client = Client::new(&endpoints.api_url).map_err(|e| e.to_string())?;
    let topics = &endpoints.topics;
    let (kafka, context) = endpoints.kafka().await?;
    let mut verdict = Verdict::default();
    let db = format!("demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut batches: Vec<BatchSummary> = Vec::new();
    println!("API_URL={}  database {db}", endpoints.api_url);

    step(1, "Create a database");
    println!("-> client.create_database({db:?})");
    let r = client.create_database(&db).await;
    shown(&r);
    verdict.check(
        r.as_ref().is_ok_and(|d| d.revision == 0),
        "created at revision 0",
    );

    step(
        2,
        "Open account 42 (two events), only if it has no events yet",
    );
    println!(
        "-> client.transact(db, [opened, deposited 100], [Max(subject account-42, 0)], \"open-account-42\")"
    );
    let mut opened = event("e-1", "com.example.account-opened", 0);
    opened.data = Some(json!({ "owner": "Ada" }));
    let open = [opened, event("e-2", "com.example.deposited", 100)];
    let r = client
        .transact(&db, &open, &account_at_most(0), Some("open-account-42"))
        .await;
    shown(&r);
    verdict.check(chain(&r) == Some((0, 2)), "basis 0 -> revision 2");
    batches.extend(r.ok());

    step(3, "Open account 42 again: the condition refuses it");
    println!("-> client.transact(db, [opened], [Max(subject account-42, 0)], \"open-again\")");
    let again = [event("e-3", "com.example.account-opened", 0)];
    let r = client
        .transact(&db, &again, &account_at_most(0), Some("open-again"))
        .await;
    shown(&r);
    verdict.check(
        matches!(&r, Err(ClientError::Api { status: 409, code: ErrorCode::FailedPrecondition, field: Some(f), .. }) if f == "conditions[0]"),
        "409 FAILED_PRECONDITION naming conditions[0]; nothing written",
    );

    step(4, "Deposit 50, if account 42 is still at revision 2");
    println!("-> client.transact(db, [deposited 50], [Max(subject account-42, 2)], \"deposit-1\")");
    let deposit = [event("e-4", "com.example.deposited", 50)];
    let r = client
        .transact(&db, &deposit, &account_at_most(2), Some("deposit-1"))
        .await;
    shown(&r);
    verdict.check(chain(&r) == Some((2, 3)), "basis 2 -> revision 3");
    let first = r.ok();

    step(
        5,
        "The same deposit again (same transaction id), as a retry after a lost answer",
    );
    println!("-> the same call");
    let r = client
        .transact(&db, &deposit, &account_at_most(2), Some("deposit-1"))
        .await;
    shown(&r);
    verdict.check(
        first.is_some() && r.ok() == first,
        "the first answer (same batch id, revision 3): committed once",
    );
    batches.extend(first);

    step(
        6,
        "Withdraw 30 through Kafka: submit a command, await its response",
    );
    let commands = AsyncCommands::connect_with_context(
        &kafka,
        CommandTopics {
            commands: topics.async_commands.clone(),
            responses: topics.async_responses.clone(),
        },
        context.clone(),
    )
    .await
    .map_err(|e| e.to_string())?
    .with_source("https://example.com/demo");
    let withdraw = AsyncCommand::Transact {
        database: db.clone(),
        events: vec![event("e-5", "com.example.withdrawn", 30)],
        conditions: account_at_most(3),
        transaction_id: Some("withdraw-1".into()),
    };
    println!(
        "-> commands.submit(Transact {{ db, [withdrawn 30], [Max(subject account-42, 3)], \"withdraw-1\" }})"
    );
    let submitted = commands
        .submit(&withdraw)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "-> {} key={} (partition {}, offset {})",
        topics.async_commands, submitted.correlation_id, submitted.partition, submitted.offset
    );
    println!("-> commands.await_response({:?})", submitted.correlation_id);
    let r = commands
        .await_response(&submitted.correlation_id, TOPIC_WAIT)
        .await;
    shown(&r);
    let withdrawn = match r {
        Ok(CommandOutcome::Batch(b)) => Some(b),
        _ => None,
    };
    verdict.check(
        withdrawn
            .as_ref()
            .is_some_and(|b| (b.basis, b.revision) == (3, 4)),
        "succeeded: a BatchSummary, basis 3 -> revision 4",
    );
    batches.extend(withdrawn);

    step(7, "Read the database");
    println!("-> client.get_database(db)");
    let r = client.get_database(&db).await;
    shown(&r);
    verdict.check(r.is_ok_and(|d| d.revision == 4), "at revision 4");

    step(
        8,
        "Read -> decide -> append (DCB) in one call, with another client's append in between",
    );
    dcb::read_decide_append(&client, &db, &mut verdict, &mut batches).await?;

    step(9, "Delete the database");
    println!("-> client.delete_database(db), then client.get_database(db)");
    let r = client.delete_database(&db).await;
    shown(&r);
    verdict.check(r.is_ok(), "its final state");
    let r = client.get_database(&db).await;
    shown(&r);
    verdict.check(
        r.err().and_then(|e| e.code()) == Some(ErrorCode::NotFound),
        "404 NOT_FOUND afterwards",
    );

    step(
        10,
        &format!(
            "The database events of {db}, as a consumer of {} reads them",
            topics.database_events
        ),
    );
    let read = events::read(&kafka, context, &topics.database_events, &db).await?;
    check_sequence(&mut verdict, &read, &batches);
    Ok(verdict)
}
