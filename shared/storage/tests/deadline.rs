//! Every store call gives up at its deadline with a transient error
//! (issue 16, item 3): an invocation answers 503 or fails for a retry
//! instead of running into Lambda's timeout. Timing assertions only bound
//! from above, with seconds of slack: a loaded machine makes the store
//! slower to give up, never faster.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use aws_sdk_dynamodb::{
    config::{
        ConfigBag, Intercept, RuntimeComponents, interceptors::BeforeTransmitInterceptorContextRef,
    },
    error::BoxError,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use common::*;
use evidentsource_domain::DatabaseName;
use evidentsource_local_servers::{dynamodb_client, shared};
use evidentsource_storage::{Deadline, ReplySlot, Store, StoreConfig, StoreError};
use tokio::time::Instant;

/// How long past its deadline a call may return: scheduling on a loaded
/// machine, never DynamoDB calls (those are abandoned at the deadline).
const SLACK: Duration = Duration::from_secs(3);
/// What the test waits at most for a call that does not give up.
const HUNG: Duration = Duration::from_secs(20);

/// Runs `call` against `deadline`: it must end, with a transient error,
/// before the deadline plus [`SLACK`].
async fn gives_up<T: std::fmt::Debug>(
    what: &str,
    deadline: Deadline,
    call: impl Future<Output = Result<T, StoreError>>,
) -> StoreError {
    let started = Instant::now();
    let result = tokio::time::timeout(HUNG, call)
        .await
        .unwrap_or_else(|_| panic!("{what}: still running after {HUNG:?}"));
    let ended = Instant::now();
    assert!(
        ended <= deadline.instant() + SLACK,
        "{what}: returned {:?} after the deadline ({:?} after it started)",
        ended - deadline.instant(),
        ended - started
    );
    let error = result.expect_err(what);
    assert!(error.is_transient(), "{what}: {error}");
    error
}

/// Before each `TransactWriteItems` of its client is sent, another writer
/// commits: the head always moves first, so the commit can never win.
#[derive(Debug)]
struct AlwaysOvertaken {
    table: String,
    name: DatabaseName,
    overtaken: Arc<AtomicUsize>,
}

impl Intercept for AlwaysOvertaken {
    fn name(&self) -> &'static str {
        "AlwaysOvertaken"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Metadata>().map(Metadata::name) != Some("TransactWriteItems") {
            return Ok(());
        }
        let n = self.overtaken.fetch_add(1, Ordering::SeqCst);
        let (table, name) = (self.table.clone(), self.name.clone());
        // The hook is synchronous: the other writer runs on a thread and
        // runtime of its own, and the request waits for it.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let other = Store::new(
                    dynamodb_client(&shared().dynamodb_endpoint),
                    StoreConfig::new(table),
                );
                let event = event(&format!("other-{n}"), "orders", None, "placed", 20);
                other
                    .transact(&tx(&name, vec![event], vec![], ""))
                    .await
                    .unwrap();
            });
        })
        .join()
        .map_err(|_| "the other writer failed")?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_cannot_win_gives_up_at_its_deadline() {
    let setup = store().await;
    let table = setup.config().table_name.clone();
    let name = new_db();
    setup.create_database(&name).await.unwrap();
    let overtaken = Arc::new(AtomicUsize::new(0));
    let config = dynamodb_client(&shared().dynamodb_endpoint)
        .config()
        .to_builder()
        .interceptor(AlwaysOvertaken {
            table: table.clone(),
            name: name.clone(),
            overtaken: overtaken.clone(),
        })
        .build();
    let losing = Store::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        StoreConfig::new(&table),
    );

    for with_id in [false, true] {
        let id = if with_id { "mine" } else { "" };
        let t = tx(
            &name,
            vec![event(
                &format!("mine-{with_id}"),
                "orders",
                None,
                "placed",
                20,
            )],
            vec![],
            id,
        );
        let deadline = Deadline::after(Duration::from_millis(300));
        let error = gives_up(
            "a commit always overtaken",
            deadline,
            losing.with_deadline(deadline).transact(&t),
        )
        .await;
        assert!(error.to_string().contains("deadline"), "says why: {error}");
    }
    assert!(overtaken.load(Ordering::SeqCst) >= 2, "it did try");
    let head = setup.get_database(&name).await.unwrap();
    let events = setup.read_events(&name, 1, head.revision).await.unwrap();
    assert_eq!(events.len() as u64, head.revision, "contiguous");
    assert!(
        events.iter().all(|e| e.event.id.starts_with("other-")),
        "nothing of the losing writer committed"
    );
}

/// A DynamoDB endpoint that accepts connections and never answers.
fn unanswering_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    endpoint
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_to_an_unanswering_table_gives_up_at_its_deadline() {
    // Data to send, made against moto; then the store is pointed at a
    // server that never answers.
    let name = new_db();
    let t = tx(
        &name,
        vec![event("e1", "orders", Some("o-1"), "placed", 20)],
        vec![],
        "t1",
    );
    let slot = ReplySlot {
        correlation_id: "c1".into(),
        fingerprint: vec![1],
        source: "https://example.com".into(),
        ttl: Duration::from_secs(3600),
        traceparent: None,
        tracestate: None,
    };
    let store = Store::new(
        dynamodb_client(&unanswering_endpoint()),
        StoreConfig::new("table"),
    );
    let bound = |ms| {
        let deadline = Deadline::after(Duration::from_millis(ms));
        (deadline, store.with_deadline(deadline))
    };

    let (d, s) = bound(300);
    gives_up("create", d, s.create_database(&name)).await;
    let (d, s) = bound(300);
    gives_up("get", d, s.get_database(&name)).await;
    let (d, s) = bound(300);
    gives_up("transact", d, s.transact(&t)).await;
    let (d, s) = bound(300);
    gives_up("transact replying", d, s.transact_replying(&t, &slot)).await;
    let (d, s) = bound(300);
    gives_up("read events", d, s.read_events(&name, 1, 10)).await;
    let (d, s) = bound(300);
    gives_up("delete", d, s.delete_database(&name)).await;
    let (d, s) = bound(300);
    gives_up("read reply", d, s.read_reply("c1")).await;
    // A deadline already passed: no call at all.
    let (d, s) = bound(0);
    gives_up("get, out of time", d, s.get_database(&name)).await;
}

/// A commit waiting for this process's earlier commit on the same database
/// (`lanes`) gives up at its own deadline, having sent nothing; another
/// database's commit does not wait at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_an_earlier_commit_of_the_process_ends_at_the_deadline() {
    let name = new_db();
    let t = |id: &str, name: &DatabaseName| {
        tx(
            name,
            vec![event(id, "orders", None, "placed", 20)],
            vec![],
            id,
        )
    };
    let store = Store::new(
        dynamodb_client(&unanswering_endpoint()),
        StoreConfig::new("table"),
    );
    // The earlier commit hangs on the unanswering table for 5 s.
    let first = store.with_deadline(Deadline::after(Duration::from_secs(5)));
    let first_tx = t("first", &name);
    let hung = tokio::spawn(async move { first.transact(&first_tx).await });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let deadline = Deadline::after(Duration::from_millis(300));
    let started = Instant::now();
    let error = gives_up(
        "a commit behind a hung one",
        deadline,
        store.with_deadline(deadline).transact(&t("second", &name)),
    )
    .await;
    assert!(
        error.to_string().contains("earlier commits"),
        "says why: {error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "gave up at its own deadline, not the earlier commit's"
    );
    assert!(!hung.is_finished(), "the earlier commit is still waiting");
    hung.abort();
}
