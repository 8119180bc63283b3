//! A write whose response is lost (issue 16, item 2): the request reached
//! the table and committed, the SDK saw a timeout and sent it again. moto
//! does not implement `ClientRequestToken`, so the second request runs and
//! fails on the first one's commit, as it would in DynamoDB after the
//! token's 10 minutes. It must be recognised as the caller's own write: one
//! commit, contiguous revisions, and the caller gets the first result.

mod common;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use aws_sdk_dynamodb::{
    config::{
        ConfigBag, Intercept, RuntimeComponents,
        interceptors::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextMut},
    },
    error::{BoxError, ConnectorError},
};
use aws_smithy_runtime_api::client::orchestrator::{Metadata, OrchestratorError};
use common::*;
use evidentsource_domain::{AppendCondition, DatabaseName, ErrorCode, Selector, Transaction};
use evidentsource_local_servers::{dynamodb_client, shared};
use evidentsource_storage::{Replied, ReplySlot, Store, StoreConfig};

type Hook = Box<dyn Fn() + Send + Sync>;

/// Replaces the first successful response to `operation` with a timeout,
/// after the request has done its work on the server, then runs `after`
/// (e.g. another writer's commit) before the SDK sends the request again.
struct LoseFirstResponse {
    operation: &'static str,
    sent: Arc<AtomicUsize>,
    lost: Arc<AtomicUsize>,
    after: Mutex<Option<Hook>>,
}

impl std::fmt::Debug for LoseFirstResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoseFirstResponse")
    }
}

fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>()
        .map(|m| m.name().to_owned())
        .unwrap_or_default()
}

impl Intercept for LoseFirstResponse {
    fn name(&self) -> &'static str {
        "LoseFirstResponse"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if operation(cfg) == self.operation {
            self.sent.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let succeeded = context.response().is_some_and(|r| r.status().is_success());
        if operation(cfg) != self.operation || !succeeded || self.lost.load(Ordering::SeqCst) > 0 {
            return Ok(());
        }
        self.lost.fetch_add(1, Ordering::SeqCst);
        if let Some(output) = context.output_or_error_mut() {
            *output = Err(OrchestratorError::connector(ConnectorError::timeout(
                "injected: the response was lost".into(),
            )));
        }
        if let Some(after) = self.after.lock().unwrap().take() {
            after();
        }
        Ok(())
    }
}

struct Lossy {
    store: Store,
    /// Requests of the operation the SDK sent.
    sent: Arc<AtomicUsize>,
    /// Responses lost (at most one).
    lost: Arc<AtomicUsize>,
}

/// A store on `table` ("another process") whose client loses the first
/// successful response to `operation`; the SDK retries as configured for
/// the local servers (3 attempts).
fn lossy_store(table: &str, operation: &'static str, after: Option<Hook>) -> Lossy {
    let sent = Arc::new(AtomicUsize::new(0));
    let lost = Arc::new(AtomicUsize::new(0));
    let base = dynamodb_client(&shared().dynamodb_endpoint);
    let config = base
        .config()
        .to_builder()
        .interceptor(LoseFirstResponse {
            operation,
            sent: sent.clone(),
            lost: lost.clone(),
            after: Mutex::new(after),
        })
        .build();
    let store = Store::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        StoreConfig::new(table),
    );
    Lossy { store, sent, lost }
}

/// Runs another writer's transaction from inside the SDK's (synchronous)
/// interceptor, on a runtime of its own.
fn commit_elsewhere(table: String, t: Transaction) -> Hook {
    Box::new(move || {
        let (table, t) = (table.clone(), t.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let other = Store::new(
                    dynamodb_client(&shared().dynamodb_endpoint),
                    StoreConfig::new(table),
                );
                other.transact(&t).await.unwrap();
            });
        })
        .join()
        .unwrap();
    })
}

fn claim(subject: &str) -> Vec<evidentsource_proto::AppendCondition> {
    vec![AppendCondition::max(Selector::SubjectEquals(subject.into()), 0).to_proto()]
}

fn two_events(prefix: &str, subject: &str) -> Vec<evidentsource_proto::cloudevents::CloudEvent> {
    vec![
        event(
            &format!("{prefix}-1"),
            "orders",
            Some(subject),
            "placed",
            100,
        ),
        event(&format!("{prefix}-2"), "orders", Some(subject), "paid", 100),
    ]
}

/// The events stored under `name`, by id, in revision order.
async fn stored_ids(store: &Store, name: &DatabaseName) -> Vec<String> {
    let head = store.get_database(name).await.unwrap();
    if head.revision == 0 {
        return Vec::new();
    }
    let events = store.read_events(name, 1, head.revision).await.unwrap();
    assert_eq!(events.len() as u64, head.revision, "contiguous revisions");
    events.into_iter().map(|e| e.event.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_commit_response_is_recognised_with_or_without_id_and_conditions() {
    let setup = store().await;
    let table = setup.config().table_name.clone();
    let cases: [(&str, bool, bool); 4] = [
        ("plain", false, false),
        ("conditioned", false, true),
        ("with-id", true, false),
        ("with-id-conditioned", true, true),
    ];
    for (case, with_id, conditioned) in cases {
        let name = new_db();
        setup.create_database(&name).await.unwrap();
        let conditions = if conditioned {
            claim("order-1")
        } else {
            vec![]
        };
        let id = if with_id { "place-order-1" } else { "" };
        let t = tx(&name, two_events("o1", "order-1"), conditions, id);

        let lossy = lossy_store(&table, "TransactWriteItems", None);
        let summary = lossy
            .store
            .transact(&t)
            .await
            .unwrap_or_else(|e| panic!("{case}: the commit happened, yet: {e}"));
        // One commit, and the answer is that commit.
        assert_eq!(
            stored_ids(&setup, &name).await,
            ["o1-1", "o1-2"],
            "{case}: committed once"
        );
        assert_eq!((summary.basis, summary.revision), (0, 2), "{case}");
        let head = setup.read_head(name.as_str()).await.unwrap().unwrap();
        assert_eq!(
            head.batch_id.as_deref(),
            Some(summary.id.as_str()),
            "{case}"
        );
        assert_eq!(
            lossy.lost.load(Ordering::SeqCst),
            1,
            "{case}: a response was lost"
        );
        assert_eq!(
            lossy.sent.load(Ordering::SeqCst),
            2,
            "{case}: the SDK sent it again"
        );
        if with_id {
            // A later retry by the caller gets the same answer.
            assert_eq!(setup.transact(&t).await.unwrap(), summary, "{case}");
        }

        // The next writer continues at revision 2.
        let next = setup
            .transact(&tx(&name, two_events("o2", "order-2"), vec![], ""))
            .await
            .unwrap();
        assert_eq!((next.basis, next.revision), (2, 4), "{case}");
    }
}

/// Another writer commits between the lost response and the SDK's second
/// request: the head no longer names our batch, the first chunk does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_commit_is_recognised_after_another_writer_committed() {
    let setup = store().await;
    let table = setup.config().table_name.clone();
    for conditioned in [false, true] {
        let name = new_db();
        setup.create_database(&name).await.unwrap();
        let other = tx(&name, two_events("x", "order-x"), vec![], "");
        let lossy = lossy_store(
            &table,
            "TransactWriteItems",
            Some(commit_elsewhere(table.clone(), other)),
        );
        let conditions = if conditioned {
            claim("order-1")
        } else {
            vec![]
        };
        let t = tx(&name, two_events("o1", "order-1"), conditions, "");
        let summary = lossy.store.transact(&t).await.unwrap();
        assert_eq!(
            stored_ids(&setup, &name).await,
            ["o1-1", "o1-2", "x-1", "x-2"],
            "ours once, then the other writer's"
        );
        assert_eq!((summary.basis, summary.revision), (0, 2));
        assert_eq!(
            lossy.sent.load(Ordering::SeqCst),
            2,
            "the SDK sent it again"
        );
    }
}

/// The async-command path: the response is recorded with the commit, and
/// the lost response does not turn it into someone else's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_commit_response_with_a_recorded_reply() {
    let setup = store().await;
    let table = setup.config().table_name.clone();
    let name = new_db();
    setup.create_database(&name).await.unwrap();
    let t = tx(
        &name,
        two_events("o1", "order-1"),
        claim("order-1"),
        "cmd-1",
    );
    let slot = ReplySlot {
        correlation_id: unique("corr"),
        fingerprint: vec![1, 2, 3],
        source: "https://example.com/test".into(),
        ttl: Duration::from_secs(3600),
        traceparent: None,
        tracestate: None,
    };
    let lossy = lossy_store(&table, "TransactWriteItems", None);
    let replied = lossy.store.transact_replying(&t, &slot).await.unwrap();
    assert_eq!(lossy.sent.load(Ordering::SeqCst), 2);
    assert!(
        matches!(replied, Replied::Recorded(_)),
        "executed here, not by someone else"
    );
    let recorded = setup
        .read_reply(&slot.correlation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&recorded, replied.reply());
    assert_eq!(stored_ids(&setup, &name).await, ["o1-1", "o1-2"]);
}

/// Creating and deleting a database are single writes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_create_and_delete_responses_are_recognised() {
    let setup = store().await;
    let table = setup.config().table_name.clone();
    let name = new_db();

    let lossy = lossy_store(&table, "PutItem", None);
    let created = lossy.store.create_database(&name).await.unwrap();
    assert_eq!(lossy.sent.load(Ordering::SeqCst), 2);
    assert_eq!(setup.get_database(&name).await.unwrap(), created);

    setup
        .transact(&tx(&name, two_events("o1", "order-1"), vec![], ""))
        .await
        .unwrap();
    let lossy = lossy_store(&table, "TransactWriteItems", None);
    let deleted = lossy.store.delete_database(&name).await.unwrap();
    assert_eq!(lossy.sent.load(Ordering::SeqCst), 2);
    assert_eq!(deleted.revision, 2);
    let err = setup.get_database(&name).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
}

fn unique(prefix: &str) -> String {
    evidentsource_local_servers::unique_name(prefix)
}
