//! Round trips per commit (docs/storage.md, "Round trips"): a warm process
//! commits from the head it remembers, so an unconditioned commit with a
//! transaction id is one write, a conditional one at most a read and a
//! write; and a remembered head that went stale changes no answer.

mod common;

use common::*;
use evidentsource_domain::{AppendCondition, DatabaseName, ErrorCode, Selector};
use evidentsource_proto::{AppendCondition as ProtoCondition, cloudevents::CloudEvent};
use evidentsource_storage::{CommitPlanSummary, Store};

/// Another process on the same table: it remembers nothing.
fn other(store: &Store) -> Store {
    Store::new(store.client().clone(), store.config().clone())
}

fn subject_event(id: &str, subject: &str) -> CloudEvent {
    event(id, "orders", Some(subject), "placed", 50)
}

fn condition(c: AppendCondition) -> Vec<ProtoCondition> {
    vec![c.to_proto()]
}

async fn commit(
    store: &Store,
    name: &DatabaseName,
    id: &str,
    subject: &str,
    conditions: Vec<ProtoCondition>,
) -> Result<(u64, u64, CommitPlanSummary), ErrorCode> {
    store
        .transact_measured(&tx(
            name,
            vec![subject_event(&format!("event-{id}"), subject)],
            conditions,
            id,
        ))
        .await
        .map(|(s, cost)| (s.basis, s.revision, cost))
        .map_err(|e| e.code())
}

/// One transaction of `n` events, each its own subject `many-{i}`: more
/// than a head's recent facts hold.
async fn commit_subjects(store: &Store, name: &DatabaseName, n: usize) {
    let many: Vec<CloudEvent> = (0..n)
        .map(|i| subject_event(&format!("many-{i}"), &format!("many-{i}")))
        .collect();
    store
        .transact(&tx(name, many, vec![], "many"))
        .await
        .unwrap();
}

/// The ids of the database's events, in revision order.
async fn ids(store: &Store, name: &DatabaseName) -> Vec<String> {
    store
        .read_events(name, 1, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.id)
        .collect()
}

fn trips(cost: &CommitPlanSummary) -> (u32, u32) {
    (cost.read_round_trips, cost.write_round_trips)
}

/// Cold and warm, per commit kind: (read, write) round trips.
#[tokio::test]
async fn round_trips_per_commit_kind() {
    let warm = store().await;
    let name = new_db();
    warm.create_database(&name).await.unwrap();
    let unique = |s: &str| condition(AppendCondition::max(Selector::SubjectEquals(s.into()), 0));

    for (case, store, id, conditions, expected) in [
        // The process that created the database knows its head.
        ("warm, with id", warm.clone(), "w1", vec![], (0, 1)),
        ("warm, with id, again", warm.clone(), "w2", vec![], (0, 1)),
        ("warm, without id", warm.clone(), "", vec![], (0, 1)),
        // Its window of recent facts holds every event: no read at all.
        ("warm, conditional", warm.clone(), "w3", unique("a"), (0, 1)),
        ("cold, with id", other(&warm), "c1", vec![], (1, 1)),
        // Head and watermark. Nothing is indexed here (no indexer runs), so
        // everything is past the watermark, and the head's recent facts
        // cover it: nothing there can be about `b`, no chunk is read.
        ("cold, conditional", other(&warm), "c2", unique("b"), (1, 1)),
    ] {
        let subject = format!("subject-{case}");
        let (_, _, cost) = commit(&store, &name, id, &subject, conditions)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        assert_eq!(trips(&cost), expected, "{case}: (reads, writes)");
    }
    let stored = warm.read_events(&name, 1, 100).await.unwrap();
    assert_eq!(stored.len(), 6, "each committed once");

    // Conditions about what the head's recent facts hold (the event at
    // revision 5), on cold processes.
    let s5 = || Selector::SubjectEquals("subject-cold, with id".into());
    for (case, c, expected) in [
        // It may match: the chunks past the watermark are read, and decide.
        (
            "refused",
            AppendCondition::max(s5(), 4),
            Err(ErrorCode::FailedPrecondition),
        ),
        ("at least", AppendCondition::min(s5(), 5), Ok((2, 1))),
        // A match at or below a `Max` bound cannot fail it: nothing read.
        ("at most", AppendCondition::max(s5(), 5), Ok((1, 1))),
    ] {
        let got = commit(&other(&warm), &name, case, "x", condition(c)).await;
        assert_eq!(got.map(|(_, _, cost)| trips(&cost)), expected, "{case}");
    }

    // More distinct subjects than a head's recent facts hold: they no
    // longer reach down to the watermark, and the chunks are read, also
    // by the next cold commit.
    commit_subjects(&warm, &name, 200).await;
    // What they dropped still decides (the oldest and the newest of them).
    for (id, subject) in [("r0", "many-0"), ("r199", "many-199")] {
        let refused = commit(&other(&warm), &name, id, "y", unique(subject)).await;
        assert_eq!(
            refused.unwrap_err(),
            ErrorCode::FailedPrecondition,
            "{subject}"
        );
    }
    for id in ["c6", "c7"] {
        let (_, _, cost) = commit(&other(&warm), &name, id, "y", unique("nobody"))
            .await
            .unwrap();
        assert_eq!(
            trips(&cost),
            (2, 1),
            "{id}: recent facts short of the watermark"
        );
    }
}

/// Another process commits behind the warm one's back: the warm one's next
/// commit is cancelled on its stale head and lands on the head the
/// cancellation returned, without reading it and without a backoff; the
/// commits after it read the head first for a while.
#[tokio::test]
async fn a_stale_remembered_head_costs_one_cancelled_write() {
    let warm = store().await;
    let name = new_db();
    warm.create_database(&name).await.unwrap();
    commit(&warm, &name, "a1", "x", vec![]).await.unwrap();
    commit(&other(&warm), &name, "b1", "y", vec![])
        .await
        .unwrap();

    let (basis, revision, cost) = commit(&warm, &name, "a2", "x", vec![]).await.unwrap();
    assert_eq!((basis, revision), (2, 3));
    assert_eq!(trips(&cost), (0, 2), "(reads, writes)");
    // Another process writes this database: the next commits read the head
    // first (heads::CONTENDED_COMMITS of them), then go from memory again.
    for i in 0..16 {
        let (_, _, cost) = commit(&warm, &name, &format!("r{i}"), "x", vec![])
            .await
            .unwrap();
        assert_eq!(trips(&cost), (1, 1), "commit {i} after the cancellation");
    }
    let (_, _, cost) = commit(&warm, &name, "a3", "x", vec![]).await.unwrap();
    assert_eq!(trips(&cost), (0, 1));
    let ids = ids(&warm, &name).await;
    assert_eq!(ids[..3], ["event-a1", "event-b1", "event-a2"]);
    assert_eq!(
        (ids.len(), ids.last().map(String::as_str)),
        (20, Some("event-a3"))
    );
}

/// Another process commits between each of the warm one's conditional
/// commits: once the warm one reads the head first, the head's recent
/// facts rule out the chunks past its window (a read and a write in
/// sequence), and a condition about the other process's latest event is
/// refused on what the chunks hold. Twelve commits between: still decided.
#[tokio::test]
async fn a_warm_process_behind_another_writer_reads_a_head_and_writes() {
    let setup = store().await;
    // Counts the calls it makes.
    let (warm, calls) = store_failing_after(&setup.config().table_name, usize::MAX);
    let name = new_db();
    warm.create_database(&name).await.unwrap();
    let unique = |s: &str| condition(AppendCondition::max(Selector::SubjectEquals(s.into()), 0));
    commit(&warm, &name, "a0", "a0", unique("a0"))
        .await
        .unwrap();
    let writer = other(&warm);

    for i in 1..=6 {
        commit(&writer, &name, &format!("b{i}"), &format!("b{i}"), vec![])
            .await
            .unwrap();
        if i % 2 == 0 {
            // The other process's event of this round: refused, on the
            // head as it is now.
            let refused = commit(
                &warm,
                &name,
                &format!("no-{i}"),
                "x",
                unique(&format!("b{i}")),
            )
            .await
            .unwrap_err();
            assert_eq!(refused, ErrorCode::FailedPrecondition, "round {i}");
            continue;
        }
        let mine = format!("a{i}");
        let before = calls.load(std::sync::atomic::Ordering::SeqCst);
        let (_, _, cost) = commit(&warm, &name, &mine, &mine, unique(&mine))
            .await
            .unwrap();
        if i > 1 {
            // The first round's commit went from a guess and was cancelled.
            assert_eq!(trips(&cost), (1, 1), "round {i}: (reads, writes)");
            // The head's recent facts cover what the other process wrote:
            // no chunk is read beside the head, only the head, then the
            // write.
            let made = calls.load(std::sync::atomic::Ordering::SeqCst) - before;
            assert_eq!(made, 2, "round {i}: calls");
        }
        if i == 5 {
            // A condition its remembered head's recent facts may match (the
            // other process's event of this round): the chunks past its
            // window go beside the head, and decide.
            let at_least = condition(AppendCondition::min(
                Selector::SubjectEquals("b5".into()),
                1,
            ));
            let (_, _, cost) = commit(&warm, &name, "min-b5", "m", at_least).await.unwrap();
            assert_eq!(trips(&cost), (1, 1), "Min(b5, 1)");
        }
    }

    // Twelve commits between: more than one read ahead holds.
    for j in 0..12 {
        commit(&writer, &name, &format!("c{j}"), &format!("c{j}"), vec![])
            .await
            .unwrap();
    }
    for (subject, expected) in [
        ("c11", Err(ErrorCode::FailedPrecondition)),
        ("c0", Err(ErrorCode::FailedPrecondition)),
        ("new", Ok(())),
    ] {
        let outcome = commit(
            &warm,
            &name,
            &format!("late-{subject}"),
            "late",
            unique(subject),
        )
        .await
        .map(|_| ());
        assert_eq!(outcome, expected, "Max({subject}, 0) after twelve commits");
    }
    let head = warm.get_database(&name).await.unwrap();
    assert_eq!(head.revision, 1 + 6 + 3 + 1 + 12 + 1);
}

/// A warm process whose window fell behind what its remembered head's
/// recent facts hold (here: its own 100-subject commit, which it did not
/// fold in) reads the chunks past its window beside the head; they decide.
#[tokio::test]
async fn chunks_past_the_window_are_read_beside_the_head() {
    let warm = store().await;
    let name = new_db();
    warm.create_database(&name).await.unwrap();
    let unique = |s: &str| condition(AppendCondition::max(Selector::SubjectEquals(s.into()), 0));
    commit(&warm, &name, "a0", "a0", unique("a0"))
        .await
        .unwrap();
    commit(&other(&warm), &name, "b1", "b1", vec![])
        .await
        .unwrap();
    // Cancelled on its stale head, then decided by the recent facts of the
    // head returned: its window stays where it was, and it reads the head
    // first from now on.
    commit(&warm, &name, "a1", "a1", unique("a1"))
        .await
        .unwrap();
    commit_subjects(&warm, &name, 100).await;

    let (_, _, cost) = commit(&warm, &name, "a2", "a2", unique("a2"))
        .await
        .unwrap();
    assert_eq!(trips(&cost), (1, 1), "the chunks read beside the head");
    for subject in ["b1", "many-0", "a2"] {
        let refused = commit(&warm, &name, &format!("no-{subject}"), "x", unique(subject)).await;
        assert_eq!(
            refused.unwrap_err(),
            ErrorCode::FailedPrecondition,
            "{subject}"
        );
    }
}

/// A process whose window starts at the index's watermark (it came after
/// the indexer) decides what lies below the window from the index: once it
/// reads the head first, that index read goes beside the head too, with
/// the chunks past the window, and the commit is a read and a write. The
/// index's answers decide: a condition about an indexed event is refused.
#[tokio::test]
async fn the_index_below_the_window_is_read_beside_the_head() {
    let setup = store().await;
    let name = new_db();
    setup.create_database(&name).await.unwrap();
    let writer = other(&setup);
    for i in 1..=5 {
        let s = format!("s{i}");
        commit(&writer, &name, &s, &s, vec![]).await.unwrap();
    }
    setup
        .index_database(name.as_str(), std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let unique = |s: &str| condition(AppendCondition::max(Selector::SubjectEquals(s.into()), 0));
    // Its first commit: head and watermark, then the index below the
    // watermark (the window starts there), then the write.
    let warm = other(&setup);
    let (_, _, cost) = commit(&warm, &name, "new0", "new0", unique("new0"))
        .await
        .unwrap();
    assert_eq!(trips(&cost), (2, 1), "the first commit: (reads, writes)");

    for i in 1..=4 {
        let b = format!("b{i}");
        commit(&writer, &name, &b, &b, vec![]).await.unwrap();
        let mine = format!("new{i}");
        let (_, _, cost) = commit(&warm, &name, &mine, &mine, unique(&mine))
            .await
            .unwrap();
        if i > 1 {
            // The first went from a guess and was cancelled.
            assert_eq!(trips(&cost), (1, 1), "round {i}: (reads, writes)");
        }
    }
    // s3 is below the window, in the index: refused, and Max(s3, 3)
    // holds.
    commit(&writer, &name, "b5", "b5", vec![]).await.unwrap();
    assert_eq!(
        commit(&warm, &name, "no-s3", "x", unique("s3"))
            .await
            .unwrap_err(),
        ErrorCode::FailedPrecondition
    );
    commit(&writer, &name, "b6", "b6", vec![]).await.unwrap();
    let at_three = condition(AppendCondition::max(
        Selector::SubjectEquals("s3".into()),
        3,
    ));
    commit(&warm, &name, "after-s3", "y", at_three)
        .await
        .unwrap();
}

/// A window emptied because it was full starts at its last commit, above
/// every watermark the process read: the index below it is then not read
/// beside the head (the indexer may not have reached it when that read
/// starts), but after the head and its watermark, at the cost of a round
/// trip. The index answers as it should either way.
#[tokio::test]
async fn the_index_is_not_read_ahead_above_the_last_watermark_read() {
    let setup = store().await;
    let name = new_db();
    setup.create_database(&name).await.unwrap();
    let writer = other(&setup);
    commit(&writer, &name, "s1", "s1", vec![]).await.unwrap();
    let index = || setup.index_database(name.as_str(), std::time::Duration::from_secs(60));
    index().await.unwrap();
    let unique = |s: &str| condition(AppendCondition::max(Selector::SubjectEquals(s.into()), 0));
    // The window starts at watermark 1; a cancelled commit then makes the
    // database contended (the next commits read the head first).
    let warm = other(&setup);
    commit(&warm, &name, "a0", "a0", unique("a0"))
        .await
        .unwrap();
    commit(&writer, &name, "b0", "b0", vec![]).await.unwrap();
    commit(&warm, &name, "a1", "a1", unique("a1"))
        .await
        .unwrap();
    // Its own commits of 2,000 long distinct subjects overflow the window
    // (4 MB of triples per database): it starts again at the last one.
    for batch in 0..2 {
        let events = (0..1000)
            .map(|i| {
                let subject = format!("{batch}-{i}-{}", "x".repeat(2000));
                event(
                    &format!("long-{batch}-{i}"),
                    "orders",
                    Some(&subject),
                    "placed",
                    10,
                )
            })
            .collect();
        warm.transact(&tx(&name, events, vec![], &format!("long-{batch}")))
            .await
            .unwrap();
    }
    // The indexer catches up past the window's start.
    index().await.unwrap();
    let (_, _, cost) = commit(&warm, &name, "new", "new", unique("new"))
        .await
        .unwrap();
    assert_eq!(
        trips(&cost),
        (2, 1),
        "the head, then the index below the window: (reads, writes)"
    );
    assert_eq!(
        commit(&warm, &name, "no-s1", "x", unique("s1"))
            .await
            .unwrap_err(),
        ErrorCode::FailedPrecondition
    );
}

/// A condition is never refused on a remembered head: it is decided again
/// on the head as it is now. A `Min` condition that fails on the stale head
/// passes on the current one; a `Max` condition that passes on the stale
/// head but not on the current one is refused.
#[tokio::test]
async fn conditions_are_refused_only_on_the_current_head() {
    let warm = store().await;
    let name = new_db();
    warm.create_database(&name).await.unwrap();
    commit(&warm, &name, "a1", "x", vec![]).await.unwrap();
    // Behind the warm process's back: an event of subject "y" at 2.
    commit(&other(&warm), &name, "b1", "y", vec![])
        .await
        .unwrap();

    // At the remembered head (1) nothing of "y" exists; at 2 it does.
    let needs_y = condition(AppendCondition::min(Selector::SubjectEquals("y".into()), 2));
    let (basis, _, cost) = commit(&warm, &name, "a2", "x", needs_y).await.unwrap();
    assert_eq!(basis, 2, "committed on the current head");
    assert!(cost.read_round_trips >= 1, "the head was read: {cost:?}");

    commit(&other(&warm), &name, "b2", "z", vec![])
        .await
        .unwrap();
    // At the remembered head (3) nothing of "z" exists; at 4 it does.
    let no_z = condition(AppendCondition::max(Selector::SubjectEquals("z".into()), 0));
    assert_eq!(
        commit(&warm, &name, "a3", "x", no_z).await.unwrap_err(),
        ErrorCode::FailedPrecondition
    );
    assert_eq!(warm.get_database(&name).await.unwrap().revision, 4);
}

/// A transaction id that committed before is found by its record's put
/// condition: a warm retry answers the first result and commits nothing,
/// also when the conditions fail on the retry's own first commit; an id
/// reused for another transaction is refused.
#[tokio::test]
async fn a_repeated_id_is_answered_from_its_record() {
    let warm = store().await;
    let name = new_db();
    warm.create_database(&name).await.unwrap();
    let first = commit(&warm, &name, "once", "x", vec![]).await.unwrap();
    let again = commit(&warm, &name, "once", "x", vec![]).await.unwrap();
    assert_eq!((again.0, again.1), (first.0, first.1));
    assert_eq!(trips(&again.2), (1, 1), "a cancelled write, the record");

    // Unique "u": the retry fails its own condition; its record answers.
    let unique = || condition(AppendCondition::max(Selector::SubjectEquals("u".into()), 0));
    let first = commit(&warm, &name, "unique-u", "u", unique())
        .await
        .unwrap();
    for store in [warm.clone(), other(&warm)] {
        let again = commit(&store, &name, "unique-u", "u", unique())
            .await
            .unwrap();
        assert_eq!((again.0, again.1), (first.0, first.1));
    }
    assert_eq!(
        commit(&warm, &name, "once", "another subject", vec![])
            .await
            .unwrap_err(),
        ErrorCode::InvalidArgument
    );
    assert_eq!(warm.get_database(&name).await.unwrap().revision, 2);
}

/// Deleted (and re-created) by another process: the warm process's commit
/// on its remembered head is cancelled and goes where a fresh read says.
#[tokio::test]
async fn a_deleted_or_recreated_database_is_not_written_through_memory() {
    let warm = store().await;
    let name = new_db();
    warm.create_database(&name).await.unwrap();
    commit(&warm, &name, "a1", "x", vec![]).await.unwrap();

    // Its deletes leave the old items to reclaim later: the old
    // incarnation's transaction records are still there.
    let mut config = warm.config().clone();
    config.reclaim_budget = std::time::Duration::ZERO;
    let elsewhere = Store::new(warm.client().clone(), config);
    elsewhere.delete_database(&name).await.unwrap();
    assert_eq!(
        commit(&warm, &name, "a2", "x", vec![]).await.unwrap_err(),
        ErrorCode::NotFound
    );

    commit(&warm, &name, "a3", "x", vec![]).await.unwrap_err();
    elsewhere.create_database(&name).await.unwrap();
    let (basis, revision, _) = commit(&warm, &name, "a4", "x", vec![]).await.unwrap();
    assert_eq!((basis, revision), (0, 1), "the new database's first commit");
    assert_eq!(ids(&elsewhere, &name).await, ["event-a4"]);

    // An id used in the deleted database is new in this one, also
    // when the commit goes from a head of the deleted one.
    let before_delete = commit(&warm, &name, "r1", "x", vec![]).await.unwrap();
    assert_eq!((before_delete.0, before_delete.1), (1, 2));
    elsewhere.delete_database(&name).await.unwrap();
    elsewhere.create_database(&name).await.unwrap();
    let retried = commit(&warm, &name, "r1", "x", vec![]).await.unwrap();
    assert_eq!(
        (retried.0, retried.1),
        (0, 1),
        "committed in the new database"
    );
    assert_eq!(ids(&elsewhere, &name).await, ["event-r1"]);
}

/// Concurrent commits of one process on one database take turns: each goes
/// from the head the one before it left, so none loses a race to another
/// (one write each, no read), and the revisions stay contiguous.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_process_commits_on_one_database_one_at_a_time() {
    const WRITERS: usize = 8;
    let store = store().await;
    let name = new_db();
    store.create_database(&name).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (store, name) = (store.clone(), name.clone());
        tasks.push(tokio::spawn(async move {
            let mut costs = Vec::new();
            for i in 0..4 {
                let id = format!("w{w}-{i}");
                let (_, _, cost) = commit(&store, &name, &id, &id, vec![]).await.unwrap();
                costs.push(trips(&cost));
            }
            costs
        }));
    }
    let mut costs = Vec::new();
    for task in tasks {
        costs.extend(task.await.unwrap());
    }
    assert!(
        costs.iter().all(|c| *c == (0, 1)),
        "(reads, writes) per commit: {costs:?}"
    );
    assert_eq!(ids(&store, &name).await.len(), WRITERS * 4);
}
