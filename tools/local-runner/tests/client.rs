//! The Rust client (clients/rust) against the real function behind the
//! local API Gateway (as `make dev` serves it), over moto: every route, the
//! typed errors, idempotent retries, and the DCB loop under contention.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use evidentsource_client::{
    Client, ClientError, Condition, Decided, ErrorCode, Event, RetryPolicy, Selector,
};
use evidentsource_local_servers::unique_name;
use serde_json::json;

mod common;

use common::api::serve_api;

fn opened(account: &str, id: &str) -> Event {
    Event::new("https://example.com/bank/accounts", "account-opened", id)
        .subject(account)
        .data(json!({ "owner": "Ada" }))
}

fn api_error(error: ClientError) -> (u16, ErrorCode, Option<String>) {
    match error {
        ClientError::Api {
            status,
            code,
            field,
            ..
        } => (status, code, field),
        other => panic!("not an API error: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_typed() {
    let (url, _stop) = serve_api().await;
    let client = Client::new(&url).unwrap();
    let db = unique_name("routes");

    let created = client.create_database(&db).await.unwrap();
    assert_eq!((created.name.as_str(), created.revision), (db.as_str(), 0));
    assert_eq!(
        api_error(client.create_database(&db).await.unwrap_err()).1,
        ErrorCode::AlreadyExists
    );

    let account = Selector::SubjectEquals("account-42".into());
    let summary = client
        .transact(
            &db,
            &[opened("account-42", "e-1"), opened("account-7", "e-2")],
            &[Condition::max(account.clone(), 0)],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (summary.basis, summary.revision, summary.event_count),
        (0, 2, 2)
    );
    assert_eq!(client.get_database(&db).await.unwrap().revision, 2);

    // The condition no longer holds: a conflict naming it.
    let conflict = client
        .transact(
            &db,
            &[opened("account-42", "e-3")],
            &[Condition::max(account.clone(), 0)],
            None,
        )
        .await
        .unwrap_err();
    assert!(conflict.is_conflict(), "{conflict:?}");
    assert_eq!(
        api_error(conflict),
        (
            409,
            ErrorCode::FailedPrecondition,
            Some("conditions[0]".into())
        )
    );

    let page = client.events(&db, Some(1), None).await.unwrap();
    let ids: Vec<(&str, Option<u64>)> = page
        .events
        .iter()
        .map(|e| (e.id.as_str(), e.revision()))
        .collect();
    assert_eq!(ids, [("e-1", Some(1)), ("e-2", Some(2))]);
    assert_eq!(page.next_from, None);
    assert_eq!(page.events[0].data, Some(json!({ "owner": "Ada" })));
    assert_eq!(
        client
            .all_events(&db, Some(2), Some(2))
            .await
            .unwrap()
            .len(),
        1
    );

    let query = client.query(&db, &account, None, None).await.unwrap();
    assert_eq!(query.as_of, 2);
    assert_eq!(query.next_from, None);
    assert_eq!(query.events.len(), 1);
    assert_eq!(query.events[0].subject.as_deref(), Some("account-42"));
    let all = client.query_all(&db, &account).await.unwrap();
    assert_eq!((all.as_of, all.events.len()), (2, 1));

    let deleted = client.delete_database(&db).await.unwrap();
    assert_eq!(deleted.revision, 2);
    assert_eq!(
        api_error(client.get_database(&db).await.unwrap_err()).1,
        ErrorCode::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_typed_by_the_contracts_codes() {
    let (url, _stop) = serve_api().await;
    // No retries: a 4xx must come back from the first attempt anyway.
    let client = Client::new(&url).unwrap();
    let missing = unique_name("missing");
    assert_eq!(
        api_error(client.get_database(&missing).await.unwrap_err()),
        (404, ErrorCode::NotFound, None)
    );
    let (status, code, _) = api_error(
        client
            .transact(&missing, &[opened("a", "e-1")], &[], None)
            .await
            .unwrap_err(),
    );
    assert_eq!((status, code), (404, ErrorCode::NotFound));

    let db = unique_name("errors");
    client.create_database(&db).await.unwrap();
    let no_stream = Event::new("https://example.com/", "t", "e-1");
    assert_eq!(
        api_error(
            client
                .transact(&db, &[no_stream], &[], None)
                .await
                .unwrap_err()
        ),
        (
            400,
            ErrorCode::InvalidArgument,
            Some("events[0].source".into())
        )
    );
    let (status, code, field) = api_error(
        client
            .query(&db, &Selector::StreamEquals("a".into()), Some(0), None)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (status, code, field.as_deref()),
        (400, ErrorCode::InvalidArgument, Some("from"))
    );
    let (status, code, _) = api_error(client.create_database("1-bad").await.unwrap_err());
    assert_eq!((status, code), (400, ErrorCode::InvalidArgument));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_sent_twice_with_its_id_commits_once() {
    let (url, _stop) = serve_api().await;
    let client = Client::new(&url).unwrap();
    let db = unique_name("twice");
    client.create_database(&db).await.unwrap();
    let events = [opened("account-1", "e-1")];
    let first = client
        .transact(&db, &events, &[], Some("open-1"))
        .await
        .unwrap();
    // What a retry after a lost answer sends: the same id and body.
    let second = client
        .transact(&db, &events, &[], Some("open-1"))
        .await
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(client.get_database(&db).await.unwrap().revision, 1);
    assert_eq!(client.all_events(&db, None, None).await.unwrap().len(), 1);
    // Without an id each call is a transaction of its own.
    client.transact(&db, &events, &[], None).await.unwrap();
    assert_eq!(client.get_database(&db).await.unwrap().revision, 2);
}

const CLIENTS: u64 = 8;
const SEATS_EACH: u64 = 4;

/// "Reserve the next seat": the number after the highest seat reserved.
fn next_seat(events: &[Event]) -> u64 {
    events
        .iter()
        .filter_map(|e| e.data.as_ref()?.get("seat")?.as_u64())
        .max()
        .unwrap_or(0)
        + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dcb_loop_loses_and_doubles_nothing_under_contention() {
    let (url, _stop) = serve_api().await;
    let db = unique_name("seats");
    Client::new(&url)
        .unwrap()
        .create_database(&db)
        .await
        .unwrap();
    let seats = Selector::SubjectEquals("flight-42".into());
    let decisions = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            // A client each, as separate processes would have.
            let client = Client::new(&url).unwrap().with_retry_policy(RetryPolicy {
                max_elapsed: Duration::from_secs(60),
                ..RetryPolicy::default()
            });
            let (db, seats, decisions) = (db.clone(), seats.clone(), decisions.clone());
            tokio::spawn(async move {
                for _ in 0..SEATS_EACH {
                    let decided = client
                        .decide_and_append_with(&db, &seats, 200, |events| {
                            decisions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let seat = next_seat(events);
                            Some(vec![
                                Event::new(
                                    "https://example.com/seats",
                                    "seat-reserved",
                                    format!("seat-{seat}"),
                                )
                                .subject("flight-42")
                                .data(json!({ "seat": seat, "client": c })),
                            ])
                        })
                        .await
                        .unwrap();
                    assert!(matches!(decided, Decided::Appended(_)), "{decided:?}");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    let events = Client::new(&url)
        .unwrap()
        .all_events(&db, None, None)
        .await
        .unwrap();
    let total = CLIENTS * SEATS_EACH;
    // How hard they contended: every decision past `total` lost a race.
    println!(
        "{} decisions for {total} seats",
        decisions.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert_eq!(events.len() as u64, total, "lost or doubled commits");
    let mut count: BTreeMap<u64, u32> = BTreeMap::new();
    for event in &events {
        *count
            .entry(next_seat(std::slice::from_ref(event)) - 1)
            .or_default() += 1;
    }
    assert_eq!(
        count,
        (1..=total).map(|s| (s, 1)).collect::<BTreeMap<_, _>>(),
        "every seat once"
    );
    // And every client got its share.
    let mut per_client: BTreeMap<u64, u64> = BTreeMap::new();
    for event in &events {
        *per_client
            .entry(event.data.as_ref().unwrap()["client"].as_u64().unwrap())
            .or_default() += 1;
    }
    assert_eq!(per_client, (0..CLIENTS).map(|c| (c, SEATS_EACH)).collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_to_append_nothing_writes_nothing() {
    let (url, _stop) = serve_api().await;
    let client = Client::new(&url).unwrap();
    let db = unique_name("nothing");
    client.create_database(&db).await.unwrap();
    client
        .transact(&db, &[opened("account-1", "e-1")], &[], None)
        .await
        .unwrap();
    let decided = client
        .decide_and_append(
            &db,
            &Selector::SubjectEquals("account-1".into()),
            |events| {
                assert_eq!(events.len(), 1);
                None
            },
        )
        .await
        .unwrap();
    assert_eq!(decided, Decided::Nothing { as_of: 1 });
    assert_eq!(client.get_database(&db).await.unwrap().revision, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_past_one_page_follow_the_pages() {
    let (url, _stop) = serve_api().await;
    let client = Client::new(&url).unwrap();
    let db = unique_name("pages");
    client.create_database(&db).await.unwrap();
    // A page holds at most 1000 events: 1005 make two.
    let batch: Vec<Event> = (0..1000)
        .map(|i| opened("account-1", &format!("e-{i}")))
        .collect();
    client.transact(&db, &batch, &[], None).await.unwrap();
    let tail: Vec<Event> = (1000..1005)
        .map(|i| opened("account-1", &format!("e-{i}")))
        .collect();
    client.transact(&db, &tail, &[], None).await.unwrap();

    let first = client.events(&db, None, None).await.unwrap();
    assert_eq!(first.events.len(), 1000);
    assert_eq!(first.next_from, Some(1001));
    let events = client.all_events(&db, None, None).await.unwrap();
    let revisions: Vec<u64> = events.iter().filter_map(Event::revision).collect();
    assert_eq!(revisions, (1..=1005).collect::<Vec<_>>());

    let account = Selector::SubjectEquals("account-1".into());
    let page = client.query(&db, &account, None, Some(1000)).await.unwrap();
    assert!(page.next_from.is_some(), "one page held everything");
    let all = client.query_all(&db, &account).await.unwrap();
    assert_eq!(all.as_of, 1005);
    let revisions: Vec<u64> = all.events.iter().filter_map(Event::revision).collect();
    assert_eq!(revisions, (1..=1005).collect::<Vec<_>>());
}
