//! Every kind of append condition, evaluated against the database as of the
//! transaction's basis, in moto.

mod common;

use common::*;
use evidentsource_domain::{AppendCondition, ErrorCode, Selector};
use evidentsource_proto::AppendCondition as Wire;

fn cond(c: AppendCondition) -> Wire {
    c.to_proto()
}

fn stream(s: &str) -> Selector {
    Selector::StreamEquals(s.into())
}

#[tokio::test]
async fn each_condition_kind() {
    let store = store().await;
    let name = new_db();
    store.create_database(&name).await.unwrap();
    // r1: orders/o-1 placed; r2: orders/o-2 placed; r3: payments/p-1 paid
    let seed = vec![
        event("1", "orders", Some("o-1"), "com.shop.placed", 20),
        event("2", "orders", Some("o-2"), "com.shop.placed", 20),
        event("3", "payments", Some("p-1"), "com.shop.paid", 20),
    ];
    store
        .transact(&tx(&name, seed, vec![], "seed"))
        .await
        .unwrap();

    let one = |id: &str| vec![event(id, "misc", None, "com.shop.noted", 5)];
    let mut n = 0;
    let mut attempt = |conditions: Vec<AppendCondition>| {
        n += 1;
        let t = tx(
            &name,
            one(&format!("e{n}")),
            conditions.into_iter().map(cond).collect(),
            "",
        );
        let store = &store;
        async move { store.transact(&t).await }
    };

    // Uniqueness: Max(sel, 0).
    assert!(
        attempt(vec![AppendCondition::max(stream("refunds"), 0)])
            .await
            .is_ok()
    );
    let err = attempt(vec![AppendCondition::max(stream("payments"), 0)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::FailedPrecondition);
    assert!(
        err.to_string()
            .contains("conditions[0] Max(stream = \"payments\", 0)"),
        "{err}"
    );
    assert!(
        err.to_string().contains("highest matching revision is 3"),
        "{err}"
    );

    // Optimistic concurrency: Max(sel, r) where r is what the writer read.
    assert!(
        attempt(vec![AppendCondition::max(stream("orders"), 2)])
            .await
            .is_ok()
    );
    let err = attempt(vec![AppendCondition::max(stream("orders"), 1)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::FailedPrecondition);

    // Min: something must have happened.
    assert!(
        attempt(vec![AppendCondition::min(stream("payments"), 3)])
            .await
            .is_ok()
    );
    let err = attempt(vec![AppendCondition::min(stream("payments"), 4)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Min("), "{err}");
    let err = attempt(vec![AppendCondition::min(stream("shipping"), 1)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no event matches"), "{err}");

    // Range.
    assert!(
        attempt(vec![AppendCondition::range(stream("orders"), 2, 2)])
            .await
            .is_ok()
    );
    let err = attempt(vec![AppendCondition::range(stream("orders"), 3, 9)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::FailedPrecondition);

    // and / or / starts_with over subject and type.
    let and = Selector::And(vec![
        Selector::StreamStartsWith("ord".into()),
        Selector::SubjectEquals("o-1".into()),
    ]);
    assert!(
        attempt(vec![AppendCondition::max(and.clone(), 1)])
            .await
            .is_ok()
    );
    assert!(attempt(vec![AppendCondition::max(and, 0)]).await.is_err());
    let or = Selector::Or(vec![
        Selector::EventTypeEquals("com.shop.refunded".into()),
        Selector::SubjectStartsWith("p-".into()),
    ]);
    assert!(
        attempt(vec![AppendCondition::range(or.clone(), 3, 3)])
            .await
            .is_ok()
    );
    assert!(attempt(vec![AppendCondition::max(or, 2)]).await.is_err());
    let by_type = Selector::EventTypeStartsWith("com.shop.pl".into());
    assert!(
        attempt(vec![AppendCondition::min(by_type.clone(), 2)])
            .await
            .is_ok()
    );
    assert!(
        attempt(vec![AppendCondition::max(by_type, 1)])
            .await
            .is_err()
    );

    // All conditions must hold; the error names the first that does not.
    let err = attempt(vec![
        AppendCondition::max(stream("refunds"), 0),
        AppendCondition::max(stream("orders"), 0),
    ])
    .await
    .unwrap_err();
    assert!(err.to_string().contains("conditions[1]"), "{err}");

    // A rejected transaction writes nothing.
    let db = store.get_database(&name).await.unwrap();
    let events = store.read_events(&name, 1, 100).await.unwrap();
    assert_eq!(events.len() as u64, db.revision);
    assert_eq!(db.revision, 3 + 7, "seed + the seven accepted transactions");
}

#[tokio::test]
async fn conditions_see_events_committed_by_another_process() {
    let first = store().await;
    let table = first.config().table_name.clone();
    let second = evidentsource_storage::Store::new(
        first.client().clone(),
        evidentsource_storage::StoreConfig::new(table),
    );
    let name = new_db();
    first.create_database(&name).await.unwrap();
    let unique = || {
        vec![cond(AppendCondition::max(
            Selector::SubjectEquals("user-42".into()),
            0,
        ))]
    };
    // Warm the first store's condition index, then commit through the other.
    first
        .transact(&tx(
            &name,
            vec![event("a", "misc", None, "t", 1)],
            unique(),
            "",
        ))
        .await
        .unwrap();
    second
        .transact(&tx(
            &name,
            vec![event("b", "users", Some("user-42"), "registered", 1)],
            unique(),
            "",
        ))
        .await
        .unwrap();
    let err = first
        .transact(&tx(
            &name,
            vec![event("c", "users", Some("user-42"), "registered", 1)],
            unique(),
            "",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::FailedPrecondition, "{err}");
}
