//! Commands produced to a real broker (tansu), read back and grouped into
//! Lambda Kafka events as the event source would, handled against moto, and
//! the responses read back from the responses topic.

mod common;

use std::time::Duration;

use common::*;
use evidentsource_commands::CommandRequest;
use evidentsource_domain::DatabaseName;
use evidentsource_local_servers::unique_name;
use evidentsource_proto::{
    AppendCondition, CreateDatabaseRequest, DeleteDatabaseRequest, ErrorCode, EventSelector,
    TransactRequest, append_condition,
    cloudevents::{CloudEvent, cloud_event::Data},
    command_response::Result as Outcome,
    event_selector,
};
use tokio::time::Instant;

fn create(name: &str) -> CommandRequest {
    CommandRequest::CreateDatabase(CreateDatabaseRequest {
        database_name: name.into(),
    })
}

fn delete(name: &str) -> CommandRequest {
    CommandRequest::DeleteDatabase(DeleteDatabaseRequest {
        database_name: name.into(),
    })
}

fn event(id: &str, stream: &str) -> CloudEvent {
    CloudEvent {
        id: id.into(),
        source: format!("https://example.com/{stream}"),
        spec_version: "1.0".into(),
        r#type: "com.shop.placed".into(),
        attributes: Default::default(),
        data: Some(Data::TextData(format!("{{\"id\":\"{id}\"}}"))),
    }
}

fn no_event_in(stream: &str) -> AppendCondition {
    AppendCondition {
        selector: Some(EventSelector {
            selector: Some(event_selector::Selector::StreamEquals(stream.into())),
        }),
        bound: Some(append_condition::Bound::Max(0)),
    }
}

fn transact(
    name: &str,
    events: Vec<CloudEvent>,
    conditions: Vec<AppendCondition>,
) -> CommandRequest {
    CommandRequest::Transact(TransactRequest {
        database_name: name.into(),
        events,
        conditions,
        transaction_id: String::new(),
    })
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn code_of(r: &Response) -> Option<ErrorCode> {
    r.parsed.error().map(|(code, _)| code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_type_in_both_encodings_gets_its_response_and_reruns_repeat_it() {
    let setup = Setup::new().await;
    let a = unique_name("alpha");
    let b = unique_name("bravo");
    let c = unique_name("charlie");
    let others: Vec<String> = (0..6).map(|_| unique_name("other")).collect();

    // The dependent sequence on partition 0 (offset order is execution
    // order); independent creates spread over all partitions by key.
    let mut messages = vec![
        ("a-create", create(&a), false, Ok("database")),
        ("b-create", create(&b), true, Ok("database")),
        (
            "a-tx",
            transact(&a, vec![event("1", "orders"), event("2", "orders")], vec![]),
            false,
            Ok("batch"),
        ),
        (
            "b-tx",
            transact(&b, vec![event("1", "carts")], vec![no_event_in("carts")]),
            true,
            Ok("batch"),
        ),
        (
            "a-tx-refused",
            transact(&a, vec![event("3", "orders")], vec![no_event_in("orders")]),
            false,
            Err(ErrorCode::FailedPrecondition),
        ),
        (
            "a-create-again",
            create(&a),
            true,
            Err(ErrorCode::AlreadyExists),
        ),
        ("b-delete", delete(&b), true, Ok("database")),
        (
            "b-tx-after-delete",
            transact(&b, vec![event("9", "carts")], vec![]),
            false,
            Err(ErrorCode::NotFound),
        ),
        ("c-delete", delete(&c), false, Err(ErrorCode::NotFound)),
    ]
    .into_iter()
    .map(|(id, request, json, expect)| {
        let id = format!("{id}-{}", unique_name("c"));
        (Raw::command(&id, &request, json).on(0), id, expect)
    })
    .collect::<Vec<_>>();
    for (i, name) in others.iter().enumerate() {
        let id = unique_name(&format!("other{i}"));
        messages.push((
            Raw::command(&id, &create(name), i % 2 == 0),
            id,
            Ok("database"),
        ));
    }
    let raws: Vec<Raw> = messages.iter().map(|(r, _, _)| r.clone()).collect();
    produce(&setup.brokers, &setup.commands, &raws).await;

    let records = read_records(&setup.brokers, &setup.commands, raws.len()).await;
    let event = lambda_event(records, &setup.brokers);
    assert!(event.records.len() > 1, "commands spread over partitions");
    let processor = setup.processor();
    let report = processor.handle(&event, far()).await.unwrap();
    assert_eq!(report.records, raws.len());
    assert_eq!(report.executed, raws.len());
    assert_eq!(report.refused, 4);
    // Its metrics record: every response delivered has its latency since
    // the command's Kafka timestamp; the batch's outcome is its worst.
    assert_eq!(report.response_latencies.len(), raws.len(), "{report:?}");
    let metrics = evidentsource_async_commands::metrics::to_metrics(
        &report,
        false,
        evidentsource_runtime::metrics::Metrics::new("N", "async-commands"),
    );
    assert_eq!(metrics.outcome(), "rejected");
    assert_eq!(metrics.get("Commands"), Some(&[raws.len() as f64][..]));
    assert_eq!(metrics.get("CommandsRejected"), Some(&[4.0][..]));

    let responses = read_responses(&setup.brokers, &setup.responses, raws.len()).await;
    let by_id = by_correlation(&responses);
    for (raw, id, expect) in &messages {
        let got = by_id
            .get(id)
            .unwrap_or_else(|| panic!("no response for {id}"));
        assert_eq!(got.len(), 1, "{id}");
        let response = got[0];
        assert_eq!(response.key, id.as_bytes());
        match expect {
            Ok(kind) => {
                assert_eq!(code_of(response), None, "{id}: {:?}", response.parsed);
                match (&response.parsed.response.result, *kind) {
                    (Some(Outcome::Database(d)), "database") => {
                        let request = CommandRequest::decode(
                            std::str::from_utf8(raw.header("ce_type").unwrap()).unwrap(),
                            raw.header("content-type")
                                .map(|v| std::str::from_utf8(v).unwrap()),
                            raw.value.as_deref().unwrap(),
                        )
                        .unwrap();
                        assert_eq!(d.name, request.database_name());
                    }
                    (Some(Outcome::BatchSummary(_)), "batch") => {}
                    other => panic!("{id}: {other:?}"),
                }
            }
            Err(code) => assert_eq!(code_of(response), Some(*code), "{id}"),
        }
        assert!(response.parsed.subject.is_some(), "{id} names its database");
    }
    let a_tx = by_id[&messages[2].1][0];
    match &a_tx.parsed.response.result {
        Some(Outcome::BatchSummary(s)) => {
            assert_eq!((s.basis, s.revision, s.event_count), (0, 2, 2));
            assert_eq!(s.database, a);
        }
        other => panic!("{other:?}"),
    }
    let b_delete = by_id[&messages[6].1][0];
    match &b_delete.parsed.response.result {
        Some(Outcome::Database(d)) => assert_eq!(d.revision, 1, "the final state"),
        other => panic!("{other:?}"),
    }
    let store = setup.store();
    let a_name = DatabaseName::parse(a.clone()).unwrap();
    assert_eq!(store.get_database(&a_name).await.unwrap().revision, 2);

    // The same batch again, as after a failed invocation: the same
    // responses, byte for byte, and nothing executed again (the database
    // deleted in between is not re-created, none gets new revisions).
    let report = processor.handle(&event, far()).await.unwrap();
    assert_eq!(report.replayed, raws.len());
    assert_eq!(report.executed, 0);
    let all = read_responses(&setup.brokers, &setup.responses, 2 * raws.len()).await;
    for (id, copies) in by_correlation(&all) {
        assert_eq!(copies.len(), 2, "{id}");
        assert_eq!(copies[0].raw(), copies[1].raw(), "{id}: byte-identical");
    }
    assert_eq!(store.get_database(&a_name).await.unwrap().revision, 2);
    let b_name = DatabaseName::parse(b).unwrap();
    assert!(
        store.get_database(&b_name).await.is_err(),
        "b stays deleted"
    );

    // A fresh processor (a new cold start) answers the same.
    let again = setup.processor().handle(&event, far()).await.unwrap();
    assert_eq!(again.replayed, raws.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correlation_id_reused_for_another_command_is_refused_without_touching_the_first() {
    let setup = Setup::new().await;
    let name = unique_name("db");
    let id = unique_name("reused");
    let first = Raw::command(&id, &create(&name), false).on(0);
    // The same command re-sent in JSON: a retry, same response.
    let retry = Raw::command(&id, &create(&name), true).on(0);
    let other = Raw::command(&id, &delete(&name), false).on(0);
    produce(&setup.brokers, &setup.commands, &[first, retry, other]).await;
    let records = read_records(&setup.brokers, &setup.commands, 3).await;
    let processor = setup.processor();
    let event = lambda_event(records, &setup.brokers);
    let report = processor.handle(&event, far()).await.unwrap();
    assert_eq!((report.executed, report.replayed), (1, 2));
    let responses = read_responses(&setup.brokers, &setup.responses, 3).await;
    assert_eq!(code_of(&responses[0]), None);
    assert_eq!(responses[0].raw(), responses[1].raw());
    assert_eq!(code_of(&responses[2]), Some(ErrorCode::InvalidArgument));
    assert!(
        responses[2]
            .parsed
            .error()
            .unwrap()
            .1
            .contains("already used"),
        "{:?}",
        responses[2].parsed
    );
    let db = DatabaseName::parse(name).unwrap();
    assert!(setup.store().get_database(&db).await.is_ok(), "not deleted");
    // Handled again, the refusal is the same bytes too.
    processor.handle(&event, far()).await.unwrap();
    let again = read_responses(&setup.brokers, &setup.responses, 6).await;
    assert_eq!(again[2].raw(), again[5].raw());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_fail_the_invocation_and_the_retry_answers_once() {
    let setup = Setup::new().await;
    let name = unique_name("db");
    let id = unique_name("cmd");
    produce(
        &setup.brokers,
        &setup.commands,
        &[Raw::command(&id, &create(&name), false)],
    )
    .await;
    let records = read_records(&setup.brokers, &setup.commands, 1).await;
    let event = lambda_event(records, &setup.brokers);

    // DynamoDB unreachable: the invocation fails, nothing is published.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let unreachable = evidentsource_storage::Store::new(
        evidentsource_local_servers::dynamodb_client(&format!("http://127.0.0.1:{closed}")),
        evidentsource_storage::StoreConfig::new(&setup.table),
    );
    let processor = evidentsource_async_commands::Processor::new(
        setup.config(&setup.brokers),
        unreachable,
        Default::default(),
    )
    .unwrap();
    let error = processor.handle(&event, far()).await.unwrap_err();
    assert!(
        matches!(
            error,
            evidentsource_async_commands::ProcessError::Storage { .. }
        ),
        "{error}"
    );

    // The broker unreachable: the command executes and its response is
    // recorded, but the invocation fails because it is not delivered.
    let no_broker = evidentsource_async_commands::Processor::new(
        setup.config(&format!("127.0.0.1:{closed}")),
        setup.store(),
        Default::default(),
    )
    .unwrap();
    let error = no_broker
        .handle(&event, Instant::now() + Duration::from_secs(3))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            evidentsource_async_commands::ProcessError::Deadline { .. }
                | evidentsource_async_commands::ProcessError::Delivery { .. }
        ),
        "{error}"
    );

    // The retry publishes the recorded response: a success, not
    // ALREADY_EXISTS, exactly once.
    let report = setup.processor().handle(&event, far()).await.unwrap();
    assert_eq!((report.executed, report.replayed), (0, 1));
    let responses = read_responses(&setup.brokers, &setup.responses, 1).await;
    assert_eq!(code_of(&responses[0]), None, "{:?}", responses[0].parsed);
    assert_eq!(responses[0].parsed.correlation_id, id);
}
