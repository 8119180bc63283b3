//! Write units per transaction, by DynamoDB's item-size rules applied to
//! the items actually sent (moto does not meter capacity).

mod common;

use common::*;
use evidentsource_proto::cloudevents::cloud_event::Data;

#[tokio::test]
async fn write_units_per_transaction() {
    let store = store().await;
    let name = new_db();
    store.create_database(&name).await.unwrap();
    let mut table = Vec::new();
    for kind in ["random", "json"] {
        for size in [200, 2048] {
            for count in [1, 10, 100] {
                let events: Vec<_> = (0..count)
                    .map(|i| {
                        let id = format!("{kind}-{size}-{count}-{i}");
                        let mut e =
                            event(&id, "orders", Some("order-123"), "com.shop.order-placed", 0);
                        let data = if kind == "random" {
                            random_bytes(&id, size)
                        } else {
                            filler(&id, size)
                        };
                        e.data = Some(Data::BinaryData(data));
                        e
                    })
                    .collect();
                let t = tx(
                    &name,
                    events,
                    vec![],
                    &format!("cost-{kind}-{size}-{count}"),
                );
                let (_, cost) = store.transact_measured(&t).await.unwrap();
                assert_eq!(cost.write_round_trips, 1, "one write round trip");
                table.push((kind, count, size, cost.write_units));
                println!(
                    "{kind:>6} data, {count:>3} events × {size:>4} B: {:>4} write units ({:.2} per event), {} items, 1 write round trip",
                    cost.write_units,
                    cost.write_units as f64 / count as f64,
                    cost.items
                );
            }
        }
    }
    let per_event = |kind, count, size| {
        let (_, _, _, wu) = table
            .iter()
            .find(|r| r.0 == kind && r.1 == count && r.2 == size)
            .unwrap();
        *wu as f64 / count as f64
    };
    // The target holds even for incompressible data.
    assert!(
        per_event("random", 100, 200) <= 0.5,
        "100 × 200 B: {} WU per event",
        per_event("random", 100, 200)
    );
    assert!(
        per_event("json", 100, 200) < per_event("random", 100, 200),
        "compression pays"
    );
    // One item write per event would be 2 WU per event (transactional).
    assert!(
        per_event("random", 100, 2048) < 2.0 * 3.0,
        "2 KB events cost what their bytes cost"
    );
}

/// The head's recent facts live in what the head leaves of its first KB:
/// once they are full (many distinct subjects committed), a one-event
/// commit with an id still costs the head's 2 write units, a chunk's 2 and
/// the idempotency record's 2 (docs/storage.md, "Recent facts on the
/// head").
#[tokio::test]
async fn recent_facts_cost_no_write_unit() {
    let store = store().await;
    let name = new_db();
    store.create_database(&name).await.unwrap();
    for i in 0..60 {
        let subject = format!("subject-with-a-longish-name-{i}");
        let e = event(&format!("e{i}"), "orders", Some(&subject), "placed", 50);
        let (_, cost) = store
            .transact_measured(&tx(&name, vec![e], vec![], &format!("t{i}")))
            .await
            .unwrap();
        assert_eq!(cost.write_units, 6, "commit {i}");
    }
    let head = store.get_database(&name).await.unwrap();
    assert_eq!(head.revision, 60);
}
