//! Round trips and latency per commit kind, warm and cold (docs/storage.md,
//! "Round trips"): a warm process commits from the head it remembers, a
//! cold one reads it first; a warm one whose database another process
//! wrote since pays a cancelled write.
//!
//! Every kind is measured on moto as it answers and with
//! [`ADDED_LATENCY_MS`] added to each request (a stand-in for DynamoDB's
//! latency, which is what round trips cost), interleaved.

use std::{fmt::Write as _, time::Instant};

use evidentsource_domain::{AppendCondition, DatabaseName, Selector};
use evidentsource_local_servers::{dynamodb_client, unique_name};
use evidentsource_storage::{Store, StoreConfig, table::create_table};

use crate::{
    conditions::{ADDED_LATENCY_MS, Samples, event, index, transaction},
    latency::AddedLatency,
};

/// What a commit asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    Plain,
    WithId,
    /// A uniqueness condition on a new subject, with an id.
    Conditional,
}

/// What the committing process knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// It is the database's only writer.
    Warm,
    /// Another process commits before each of its commits (after the first
    /// cancelled guess it reads the head first: `heads::CONTENDED_COMMITS`).
    Stale,
    /// Nothing remembered (a new process); the index is caught up.
    Cold,
}

pub const KINDS: [(Commit, State); 9] = [
    (Commit::Plain, State::Warm),
    (Commit::WithId, State::Warm),
    (Commit::Conditional, State::Warm),
    (Commit::Plain, State::Stale),
    (Commit::WithId, State::Stale),
    (Commit::Conditional, State::Stale),
    (Commit::Plain, State::Cold),
    (Commit::WithId, State::Cold),
    (Commit::Conditional, State::Cold),
];

fn label(commit: Commit, state: State) -> String {
    let commit = match commit {
        Commit::Plain => "no conditions, no id",
        Commit::WithId => "no conditions, with an id",
        Commit::Conditional => "`Max(subject = new, 0)`, with an id",
    };
    let state = match state {
        State::Warm => "warm",
        State::Stale => "warm, another process commits between its commits",
        State::Cold => "cold (nothing remembered), index caught up",
    };
    format!("{commit} | {state}")
}

/// Each kind's samples on moto as is (`.0`) and with the added latency.
pub struct CommitKinds {
    pub kinds: Vec<(Samples, Samples)>,
}

/// `samples` commits of each kind in each latency mode, interleaved, on a
/// fresh table, a database per state (histories: a few hundred events).
pub async fn measure(endpoint: &str, samples: usize) -> CommitKinds {
    let latency = AddedLatency::default();
    let base = dynamodb_client(endpoint);
    let client = latency.on(&base);
    let table = unique_name("kinds");
    create_table(&client, &table).await.expect("table");
    let config = StoreConfig::new(table);
    // A database per state, so that what one state's samples commit does
    // not change what another's process knows.
    let warm = Store::new(client.clone(), config.clone());
    let stale = Store::new(client.clone(), config.clone());
    let other = Store::new(client.clone(), config.clone());
    let database = |state: &str| DatabaseName::parse(unique_name(state)).unwrap();
    let (warm_db, stale_db, cold_db) = (database("warm"), database("stale"), database("cold"));
    warm.create_database(&warm_db).await.expect("create");
    stale.create_database(&stale_db).await.expect("create");
    other.create_database(&cold_db).await.expect("create");

    let mut out = CommitKinds {
        kinds: vec![(Samples::default(), Samples::default()); KINDS.len()],
    };
    // One warm-up round, not counted.
    for round in 0..=samples {
        for mode in [0, ADDED_LATENCY_MS] {
            for (k, &(commit, state)) in KINDS.iter().enumerate() {
                latency.set(0);
                let tag = format!("{round}-{mode}-{k}");
                let cold;
                let (store, db) = match state {
                    State::Warm => (&warm, &warm_db),
                    State::Stale => {
                        // Not timed.
                        let t = transaction(
                            &stale_db,
                            vec![event(format!("o{tag}"), tag.clone())],
                            vec![],
                            "",
                        );
                        other.transact(&t).await.expect("another process's commit");
                        (&stale, &stale_db)
                    }
                    State::Cold => {
                        index(&other, &cold_db).await;
                        cold = Store::new(client.clone(), config.clone());
                        (&cold, &cold_db)
                    }
                };
                let subject = format!("s{tag}");
                let (conditions, id) = match commit {
                    Commit::Plain => (vec![], String::new()),
                    Commit::WithId => (vec![], format!("tx-{tag}")),
                    Commit::Conditional => (
                        vec![AppendCondition::max(
                            Selector::SubjectEquals(subject.clone()),
                            0,
                        )],
                        format!("tx-{tag}"),
                    ),
                };
                let t = transaction(db, vec![event(format!("e{tag}"), subject)], conditions, &id);
                latency.set(mode);
                let started = Instant::now();
                let (_, cost) = store
                    .transact_measured(&t)
                    .await
                    .expect("a measured commit");
                let millis = started.elapsed().as_secs_f64() * 1000.0;
                if round > 0 {
                    let (as_is, added) = &mut out.kinds[k];
                    let s = if mode == 0 { as_is } else { added };
                    s.millis.push(millis);
                    s.round_trips
                        .push(cost.read_round_trips + cost.write_round_trips);
                }
            }
        }
    }
    latency.set(0);
    out
}

impl CommitKinds {
    fn samples(&self, commit: Commit, state: State) -> Option<&Samples> {
        let k = KINDS.iter().position(|&kind| kind == (commit, state))?;
        Some(&self.kinds[k].0)
    }

    /// The most round trips any sample of a kind took.
    fn max_round_trips(&self, commit: Commit, state: State) -> Option<u32> {
        let k = KINDS.iter().position(|&kind| kind == (commit, state))?;
        let (a, b) = &self.kinds[k];
        a.round_trips.iter().chain(&b.round_trips).copied().max()
    }

    pub fn target_row(&self, md: &mut String, verdict: fn(bool) -> &'static str) {
        let (Some(with_id), Some(conditional)) = (
            self.max_round_trips(Commit::WithId, State::Warm),
            self.max_round_trips(Commit::Conditional, State::Warm),
        ) else {
            return;
        };
        let _ = writeln!(
            md,
            "| round trips: a warm unconditioned commit with an id in 1, a warm conditional one in ≤ 2 | at most {with_id} and {conditional} (every sample) | {} |",
            verdict(with_id == 1 && conditional <= 2)
        );
    }

    pub fn render(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "A database per row group: \"warm\", one process its only writer (it remembers the head its last commit left); \"another process commits between\", a process whose every commit follows one of another process (untimed): after its first cancelled guess it reads the head first, see docs/storage.md, \"Round trips\"; \"cold\", a new process for each sample (the index caught up first, untimed). Single-event commits; round trips are sequential DynamoDB requests (reads side by side count once), as the store counts them; medians and p99 of the samples, on moto as it answers and with {ADDED_LATENCY_MS} ms added to every request.\n"
        );
        let _ = writeln!(
            md,
            "| commit | process | round trips (median, max) | p50 ms | p99 ms | p50 ms +{ADDED_LATENCY_MS} ms | p99 ms +{ADDED_LATENCY_MS} ms |\n|---|---|---:|---:|---:|---:|---:|"
        );
        for (&(commit, state), (as_is, added)) in KINDS.iter().zip(&self.kinds) {
            let max = as_is.round_trips.iter().chain(&added.round_trips).max();
            let _ = writeln!(
                md,
                "| {} | {:.0}, {} | {:.1} | {:.1} | {:.1} | {:.1} |",
                label(commit, state),
                as_is.round_trips_median(),
                max.map_or("-".into(), u32::to_string),
                as_is.p(0.5),
                as_is.p(0.99),
                added.p(0.5),
                added.p(0.99),
            );
        }
        if let (Some(warm), Some(cold)) = (
            self.samples(Commit::WithId, State::Warm),
            self.samples(Commit::WithId, State::Cold),
        ) {
            let _ = writeln!(
                md,
                "\nA warm commit with an id takes {:.2} × the time of a cold one on moto as is (p50).\n",
                warm.p(0.5) / cold.p(0.5)
            );
        }
    }
}
