//! The `make demo` scenario, through the public interfaces only: the HTTP
//! API (`API_URL`) and the Kafka topics (`KAFKA_BROKERS`, the topic
//! variables), as a user's client would use them. It prints a transcript
//! and checks every answer and, at the end, the database events a consumer
//! reads: Created, a contiguous basis/revision chain, Deleted, no
//! duplicates but byte-identical ones.

mod dcb;
pub mod http;
pub mod kafka;

use std::{collections::HashMap, time::Duration};

use evidentsource_cloudevents_kafka::{decode_message, encode};
use evidentsource_commands::{CommandRequest, ContentKind, ReceivedResponse, SUCCEEDED, TRANSACT};
use evidentsource_database_events::{
    ReceivedBody, ReceivedDatabaseEvent, SequenceTracker, describe,
};
use evidentsource_kafka_config::Topics;
use evidentsource_proto::command_response;
use rdkafka::Message;
use serde_json::{Value, json};

use self::{http::HttpResponse, kafka::Kafka};

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

/// Shows the request as a curl command a reader can paste.
async fn call(
    api: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<HttpResponse, String> {
    let body = body.map(Value::to_string);
    let mut shown = format!("$ curl -s -X {method} \"$API_URL{path}\"");
    if let Some(b) = &body {
        shown.push_str(&format!(" -H 'content-type: application/json' -d '{b}'"));
    }
    println!("{shown}");
    let response = http::send(api, method, path, body.as_deref()).await?;
    println!("<- {} {}", response.status, response.text());
    Ok(response)
}

fn event(id: &str, ty: &str, data: Value) -> Value {
    json!({
        "specversion": "1.0",
        "id": id,
        "source": "https://example.com/bank/accounts",
        "type": ty,
        "subject": "account-42",
        "datacontenttype": "application/json",
        "data": data,
    })
}

fn account_at_most(revision: u64) -> Value {
    json!([{ "selector": { "subject_equals": "account-42" }, "max": revision }])
}

/// A batch as the API reported it, to compare with the events topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub id: String,
    pub basis: u64,
    pub revision: u64,
    pub event_count: u64,
}

fn batch_of(v: &Value) -> Option<Batch> {
    Some(Batch {
        id: v["id"].as_str()?.to_owned(),
        basis: v["basis"].as_u64()?,
        revision: v["revision"].as_u64()?,
        event_count: v["event_count"].as_u64()?,
    })
}

/// Runs the scenario against `endpoints`; Err only when it could not run.
pub async fn run(endpoints: &Endpoints) -> Result<Verdict, String> {
    let api = endpoints.api_url.as_str();
    let topics = &endpoints.topics;
    let kafka = Kafka::from_lookup(|k| endpoints.vars.get(k).cloned()).await?;
    let mut verdict = Verdict::default();
    let db = format!("demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut batches = Vec::new();
    println!("API_URL={api}  database {db}");

    step(1, "Create a database");
    let r = call(api, "POST", "/databases", Some(&json!({ "name": db }))).await?;
    verdict.check(
        r.status == 201 && r.json()["revision"] == 0,
        "201 Created at revision 0",
    );

    step(
        2,
        "Open account 42 (two events), only if account 42 has no events yet",
    );
    let open = json!({
        "transaction_id": "open-account-42",
        "events": [
            event("e-1", "com.example.account-opened", json!({"owner": "Ada"})),
            event("e-2", "com.example.deposited", json!({"amount": 100})),
        ],
        "conditions": account_at_most(0),
    });
    let path = format!("/databases/{db}/transactions");
    let r = call(api, "POST", &path, Some(&open)).await?;
    let first = batch_of(&r.json());
    verdict.check(
        r.status == 200
            && first
                .as_ref()
                .is_some_and(|b| (b.basis, b.revision, b.event_count) == (0, 2, 2)),
        "200, basis 0 -> revision 2, 2 events",
    );
    batches.extend(first);

    step(3, "Open account 42 again: the condition rejects it");
    let again = json!({
        "transaction_id": "open-account-42-again",
        "events": [event("e-3", "com.example.account-opened", json!({"owner": "Eve"}))],
        "conditions": account_at_most(0),
    });
    let r = call(api, "POST", &path, Some(&again)).await?;
    let problem = r.json();
    verdict.check(
        r.status == 409
            && problem["code"] == "FAILED_PRECONDITION"
            && problem["field"] == "conditions[0]",
        "409 FAILED_PRECONDITION naming conditions[0]; nothing written",
    );

    step(
        4,
        "Deposit, if account 42 is still at revision 2 (optimistic concurrency)",
    );
    let deposit = json!({
        "transaction_id": "deposit-1",
        "events": [event("e-4", "com.example.deposited", json!({"amount": 50}))],
        "conditions": account_at_most(2),
    });
    let r = call(api, "POST", &path, Some(&deposit)).await?;
    let deposited = batch_of(&r.json());
    verdict.check(
        r.status == 200
            && deposited
                .as_ref()
                .is_some_and(|b| (b.basis, b.revision) == (2, 3)),
        "200, basis 2 -> revision 3",
    );

    step(
        5,
        "Send the same deposit again (same transaction_id), as a client retrying after a timeout",
    );
    let r = call(api, "POST", &path, Some(&deposit)).await?;
    verdict.check(
        r.status == 200 && batch_of(&r.json()) == deposited && deposited.is_some(),
        "200 with the first result (same batch id, revision 3): committed once",
    );
    batches.extend(deposited);

    step(
        6,
        "Withdraw through Kafka: a transact command on the commands topic",
    );
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let command_json = json!({
        "database_name": db,
        "transaction_id": "withdraw-1",
        "events": [{
            "id": "e-5",
            "source": "https://example.com/bank/accounts",
            "spec_version": "1.0",
            "type": "com.example.withdrawn",
            "attributes": {
                "subject": {"ce_string": "account-42"},
                "datacontenttype": {"ce_string": "application/json"}
            },
            "text_data": "{\"amount\":30}"
        }],
        "conditions": account_at_most(3),
    });
    let request = CommandRequest::decode(
        TRANSACT,
        Some("application/json"),
        command_json.to_string().as_bytes(),
    )
    .map_err(|e| format!("the demo's own command is invalid: {e}"))?;
    let message = encode(&request.to_event_with(
        &correlation_id,
        &uuid::Uuid::new_v4().to_string(),
        "https://example.com/demo",
        ContentKind::Json,
    ));
    println!("-> {} key={correlation_id}", topics.async_commands);
    for (name, value) in &message.headers {
        println!("   {name}: {}", String::from_utf8_lossy(value));
    }
    println!("   value: {}", String::from_utf8_lossy(&message.value));
    let (partition, offset) = kafka
        .produce(
            &topics.async_commands,
            &correlation_id,
            &message.value,
            message.owned_headers(),
        )
        .await?;
    println!("   (acknowledged: partition {partition} offset {offset})");
    println!(
        "<- waiting on {} for key {correlation_id}",
        topics.async_responses
    );
    let mut response = None;
    kafka
        .read_from_start(&topics.async_responses, TOPIC_WAIT, |m| {
            if kafka::key_of(m) != correlation_id {
                return true;
            }
            println!("{}", headers_of(m));
            response = Some(
                decode_message(m)
                    .map_err(|e| e.to_string())
                    .and_then(|e| ReceivedResponse::parse(m.key(), &e).map_err(|e| e.to_string())),
            );
            false
        })
        .await?;
    let withdrawn = match response {
        Some(Ok(r)) => {
            match &r.response.result {
                Some(command_response::Result::BatchSummary(b)) => {
                    println!(
                        "  body: BatchSummary {{ id: {}, database: {}, basis: {}, revision: {}, event_count: {} }}",
                        b.id, b.database, b.basis, b.revision, b.event_count
                    );
                }
                other => println!("  body: {other:?}"),
            }
            match &r.response.result {
                Some(command_response::Result::BatchSummary(b)) => Some(Batch {
                    id: b.id.clone(),
                    basis: b.basis,
                    revision: b.revision,
                    event_count: u64::from(b.event_count),
                }),
                _ => None,
            }
        }
        Some(Err(e)) => {
            println!("   not a valid response: {e}");
            None
        }
        None => None,
    };
    verdict.check(
        withdrawn
            .as_ref()
            .is_some_and(|b| (b.basis, b.revision) == (3, 4)),
        format!("{SUCCEEDED} with a BatchSummary, basis 3 -> revision 4"),
    );
    batches.extend(withdrawn);

    step(7, "Read the database");
    let r = call(api, "GET", &format!("/databases/{db}"), None).await?;
    verdict.check(
        r.status == 200 && r.json()["revision"] == 4,
        "200 at revision 4",
    );

    step(
        8,
        "Read -> decide -> append (DCB): query account 42, decide, append with Max(selector, as_of)",
    );
    dcb::read_decide_append(api, &db, &mut verdict, &mut batches).await?;

    step(9, "Delete the database");
    let r = call(api, "DELETE", &format!("/databases/{db}"), None).await?;
    verdict.check(r.status == 200, "200 with its final state");
    let r = call(api, "GET", &format!("/databases/{db}"), None).await?;
    verdict.check(r.status == 404, "404 afterwards");

    step(
        10,
        &format!(
            "The database events of {db}, as a consumer of {} reads them",
            topics.database_events
        ),
    );
    let seen = read_database_events(&kafka, &topics.database_events, &db).await?;
    check_sequence(&mut verdict, &seen, &batches);
    Ok(verdict)
}

/// One database event as read, with its bytes.
#[derive(Debug, Clone)]
pub struct Seen {
    pub event: Result<ReceivedDatabaseEvent, String>,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

fn headers_of(m: &rdkafka::message::BorrowedMessage<'_>) -> String {
    describe(m, None).trim_end().to_owned()
}

async fn read_database_events(kafka: &Kafka, topic: &str, db: &str) -> Result<Vec<Seen>, String> {
    let mut seen = Vec::new();
    kafka
        .read_from_start(topic, TOPIC_WAIT, |m| {
            if kafka::key_of(m) != db {
                return true;
            }
            let event = decode_message(m)
                .map_err(|e| e.to_string())
                .and_then(|e| ReceivedDatabaseEvent::parse(m.key(), &e).map_err(|e| e.to_string()));
            print!("{}", describe(m, event.as_ref().ok()));
            let deleted = matches!(&event, Ok(e) if matches!(e.body, ReceivedBody::Deleted));
            seen.push(Seen {
                event,
                key: m.key().unwrap_or_default().to_vec(),
                value: m.payload().unwrap_or_default().to_vec(),
            });
            !deleted
        })
        .await?;
    Ok(seen)
}

/// The contract's checks on one database's events, plus the demo's own:
/// one event per change it made, each batch as the API or the response
/// reported it.
pub fn check_sequence(verdict: &mut Verdict, seen: &[Seen], batches: &[Batch]) {
    let mut tracker = SequenceTracker::default();
    let mut first_copy: HashMap<String, (Vec<u8>, Vec<u8>)> = HashMap::new();
    let mut distinct = Vec::new();
    let mut problems = Vec::new();
    for s in seen {
        let event = match &s.event {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("invalid event: {e}"));
                continue;
            }
        };
        match first_copy.get(&event.id) {
            Some((k, v)) if *k == s.key && *v == s.value => {
                println!("   (byte-identical duplicate of {}: skipped)", event.id);
                continue;
            }
            Some(_) => {
                problems.push(format!(
                    "duplicate ce_id {} with different content",
                    event.id
                ));
                continue;
            }
            None => {
                first_copy.insert(event.id.clone(), (s.key.clone(), s.value.clone()));
            }
        }
        problems.extend(tracker.observe(event, &s.key, &s.value));
        distinct.push(event);
    }
    for p in &problems {
        println!("   !! {p}");
    }
    verdict.check(
        problems.is_empty(),
        "no gap, no invalid event, duplicates only byte-identical",
    );
    let shape: Vec<String> = distinct
        .iter()
        .map(|e| match &e.body {
            ReceivedBody::Created(d) => format!("Created@{}", d.revision),
            ReceivedBody::Transacted(b) => format!("Transacted {}->{}", b.basis, b.revision),
            ReceivedBody::Deleted => "Deleted".to_owned(),
        })
        .collect();
    // Created, each batch the demo made, Deleted: nothing else.
    let expected: Vec<String> = std::iter::once("Created@0".to_owned())
        .chain(
            batches
                .iter()
                .map(|b| format!("Transacted {}->{}", b.basis, b.revision)),
        )
        .chain(std::iter::once("Deleted".to_owned()))
        .collect();
    verdict.check(
        shape == expected,
        format!("{} (read: {})", expected.join(", "), shape.join(", ")),
    );
    let reported: Vec<Batch> = distinct
        .iter()
        .filter_map(|e| match &e.body {
            ReceivedBody::Transacted(b) => Some(Batch {
                id: b.id.clone(),
                basis: b.basis,
                revision: b.revision,
                event_count: u64::from(b.event_count),
            }),
            _ => None,
        })
        .collect();
    verdict.check(
        reported == batches,
        "each batch on the topic is the one the API / the async response reported (id, basis, revision, count)",
    );
}

#[cfg(test)]
mod tests {
    use evidentsource_proto::{BatchSummary, Database};

    use super::*;

    fn created(id: &str) -> Seen {
        let db = Database {
            name: "d".into(),
            ..Default::default()
        };
        seen(id, None, None, ReceivedBody::Created(db), b"c")
    }

    fn transacted(id: &str, basis: u64, revision: u64, value: &[u8]) -> Seen {
        let summary = BatchSummary {
            id: format!("batch-{revision}"),
            database: "d".into(),
            basis,
            revision,
            event_count: 1,
            recorded_time: None,
        };
        seen(
            id,
            Some(revision),
            Some(basis),
            ReceivedBody::Transacted(summary),
            value,
        )
    }

    fn seen(
        id: &str,
        revision: Option<u64>,
        basis: Option<u64>,
        body: ReceivedBody,
        value: &[u8],
    ) -> Seen {
        Seen {
            event: Ok(ReceivedDatabaseEvent {
                database: "d".into(),
                id: id.into(),
                time: None,
                revision,
                basis,
                body,
            }),
            key: b"d".to_vec(),
            value: value.to_vec(),
        }
    }

    fn batch(basis: u64, revision: u64) -> Batch {
        Batch {
            id: format!("batch-{revision}"),
            basis,
            revision,
            event_count: 1,
        }
    }

    fn deleted() -> Seen {
        seen("x", None, None, ReceivedBody::Deleted, b"")
    }

    fn verdict(seen: &[Seen]) -> Verdict {
        let mut v = Verdict::default();
        let batches = [batch(0, 2), batch(2, 3), batch(3, 4)];
        check_sequence(&mut v, seen, &batches);
        v
    }

    #[test]
    fn the_expected_sequence_passes_with_identical_duplicates() {
        let t1 = transacted("t1", 0, 2, b"1");
        let v = verdict(&[
            created("c"),
            t1.clone(),
            t1,
            transacted("t2", 2, 3, b"2"),
            transacted("t3", 3, 4, b"3"),
            deleted(),
        ]);
        assert!(v.passed(), "{:?}", v.failures);
        assert_eq!(v.checks, 3);
    }

    #[test]
    fn gaps_conflicting_duplicates_and_missing_events_fail() {
        // A gap (2 -> 3 missing).
        let v = verdict(&[
            created("c"),
            transacted("t1", 0, 2, b"1"),
            transacted("t3", 3, 4, b"3"),
            deleted(),
        ]);
        assert_eq!(v.failures.len(), 3, "{:?}", v.failures);
        // A duplicate ce_id with other bytes.
        let v = verdict(&[
            created("c"),
            transacted("t1", 0, 2, b"1"),
            transacted("t1", 0, 2, b"other"),
            transacted("t2", 2, 3, b"2"),
            transacted("t3", 3, 4, b"3"),
            deleted(),
        ]);
        assert_eq!(v.failures.len(), 1, "{:?}", v.failures);
        // No Deleted.
        let v = verdict(&[
            created("c"),
            transacted("t1", 0, 2, b"1"),
            transacted("t2", 2, 3, b"2"),
            transacted("t3", 3, 4, b"3"),
        ]);
        assert_eq!(v.failures.len(), 1, "{:?}", v.failures);
        // An invalid message.
        let mut all = vec![created("c")];
        all.push(Seen {
            event: Err("no ce_type".into()),
            key: vec![],
            value: vec![],
        });
        let v = verdict(&all);
        assert!(
            v.failures.iter().any(|f| f.contains("no gap")),
            "{:?}",
            v.failures
        );
    }
}
