//! The topic tool against a real broker (tansu): creates the four topics,
//! verifies them, leaves existing ones alone and reports what differs.

use std::time::Duration;

use evidentsource_admin::{Admin, Created, Finding, ONE_DAY_MS, SEVEN_DAYS_MS, recommended};
use evidentsource_kafka_config::{KafkaContext, KafkaSettings, Topics};
use evidentsource_local_servers::{shared, unique_name, wait_for_kafka};

fn topics() -> Topics {
    let prefix = unique_name("t");
    Topics {
        transaction_proposals: format!("{prefix}-proposals"),
        database_events: format!("{prefix}-events"),
        async_commands: format!("{prefix}-commands"),
        async_responses: format!("{prefix}-responses"),
    }
}

fn admin() -> Admin {
    let brokers = shared().kafka_brokers.clone();
    wait_for_kafka(&brokers, Duration::from_secs(30)).unwrap();
    let settings =
        KafkaSettings::from_lookup(|k| (k == "KAFKA_BROKERS").then(|| brokers.clone())).unwrap();
    Admin::new(&settings, KafkaContext::default()).unwrap()
}

#[tokio::test]
async fn creates_then_verifies_and_leaves_existing_topics_alone() {
    let admin = admin();
    let topics = topics();
    let specs = recommended(&topics, 3, 1);
    assert_eq!(specs[1].retention_ms, SEVEN_DAYS_MS);
    assert_eq!(specs[0].retention_ms, ONE_DAY_MS);

    let missing = admin.verify(&specs).await.unwrap();
    assert_eq!(missing.len(), 4, "{missing:?}");
    assert!(missing.iter().all(|f| matches!(f, Finding::Missing { .. })));

    let created = admin.create(&specs).await.unwrap();
    assert!(
        created.iter().all(|c| matches!(c, Created::Created(_))),
        "{created:?}"
    );
    let findings = admin.verify(&specs).await.unwrap();
    assert_eq!(findings, vec![], "freshly created topics match");

    // Again: nothing is created, and nothing changes.
    let again = admin.create(&specs).await.unwrap();
    assert!(
        again.iter().all(|c| matches!(c, Created::Existed(_))),
        "{again:?}"
    );
    assert_eq!(admin.verify(&specs).await.unwrap(), vec![]);
}

#[tokio::test]
async fn reports_every_setting_that_differs_without_changing_it() {
    let admin = admin();
    let topics = topics();
    // Someone created the events topic by hand: 1 partition, 1 hour.
    let mut wrong = recommended(&topics, 1, 1);
    wrong[1].retention_ms = 3_600_000;
    admin.create(&wrong[1..2]).await.unwrap();

    let specs = recommended(&topics, 3, 1);
    let findings = admin.verify(&specs).await.unwrap();
    let events = &topics.database_events;
    assert!(
        findings.contains(&Finding::TooFewPartitions {
            topic: events.clone(),
            has: 1,
            wants: 3
        }),
        "{findings:?}"
    );
    assert!(
        findings.contains(&Finding::Retention {
            topic: events.clone(),
            has: Some("3600000".into()),
            wants: SEVEN_DAYS_MS
        }),
        "{findings:?}"
    );
    // A replication factor the broker cannot have is reported too.
    let three = recommended(&topics, 1, 3);
    let findings3 = admin.verify(&three[1..2]).await.unwrap();
    assert!(
        findings3.contains(&Finding::Replication {
            topic: events.clone(),
            has: 1,
            wants: 3
        }),
        "{findings3:?}"
    );
    // `create` leaves the existing topic as it was.
    admin.create(&specs).await.unwrap();
    let after = admin.verify(&specs[1..2]).await.unwrap();
    assert_eq!(after.len(), 2, "still 1 partition and 1 hour: {after:?}");
}
