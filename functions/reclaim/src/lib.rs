//! The reclaim function's invocation: one run through the reclaim queue
//! (see `main.rs`), its result and its metrics record (CloudWatch EMF, see
//! `evidentsource_runtime::metrics` and docs/metrics.md).

use std::time::Duration;

use evidentsource_runtime::metrics::Metrics;
use evidentsource_storage::{ReclaimReport, Store, StoreError};
use serde_json::{Value, json};

/// The crate's short name: the `FunctionName` dimension outside Lambda.
pub const FUNCTION: &str = "reclaim";

/// The `Outcome` dimension's values: `partial` when malformed queue
/// entries were skipped (someone must look at them), `error` when the run
/// failed.
pub const OUTCOMES: &[&str] = &["ok", "partial", "error"];

/// Works through the queue for `budget`; the invocation's result and its
/// metrics record (on `metrics`), a failed run's included.
pub async fn run(
    store: &Store,
    budget: Duration,
    metrics: Metrics,
) -> (Result<Value, StoreError>, Metrics) {
    let report = store.reclaim_pending(budget).await;
    match &report {
        Ok(report) => {
            if report.malformed > 0 {
                // Each one is logged with its key by the store.
                tracing::warn!(
                    malformed = report.malformed,
                    "reclaim queue entries skipped: fix or remove them (their keys are logged \
                     above); the others were reclaimed"
                );
            }
            tracing::info!(?report, "reclaim run");
        }
        Err(e) => tracing::error!(
            error = %e,
            "reclaim run failed: the queue is kept and the next scheduled run retries; if it \
             keeps failing, check the function's table permissions"
        ),
    }
    let metrics = to_metrics(report.as_ref().ok(), metrics);
    (report.map(|r| run_result(&r)), metrics)
}

/// The invocation's result: what the run did, for the console and for
/// whoever invokes it by hand.
pub fn run_result(report: &ReclaimReport) -> Value {
    json!({
        "completed": report.completed,
        "items_deleted": report.items_deleted,
        "malformed": report.malformed,
        "queue_empty": report.queue_empty,
    })
}

/// The run's record on `metrics`; `report` is None when the run failed.
pub fn to_metrics(report: Option<&ReclaimReport>, mut metrics: Metrics) -> Metrics {
    let (outcome, databases, items) = match report {
        None => ("error", 0, 0),
        Some(r) if r.malformed > 0 => ("partial", r.completed, r.items_deleted),
        Some(r) => ("ok", r.completed, r.items_deleted),
    };
    metrics
        .set_outcome(outcome)
        .count("DatabasesReclaimed", databases as u64)
        .count("ItemsReclaimed", items as u64);
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(completed: usize, items_deleted: usize, malformed: usize) -> ReclaimReport {
        ReclaimReport {
            completed,
            items_deleted,
            malformed,
            queue_empty: false,
        }
    }

    #[test]
    fn the_result_counts_skipped_entries() {
        assert_eq!(
            run_result(&report(2, 40, 1)),
            json!({"completed": 2, "items_deleted": 40, "malformed": 1, "queue_empty": false})
        );
    }

    #[test]
    fn outcome_and_counts_by_what_the_run_did() {
        for (report, outcome, databases, items) in [
            (Some(report(2, 40, 0)), "ok", 2.0, 40.0),
            (Some(report(0, 0, 0)), "ok", 0.0, 0.0),
            (Some(report(1, 3, 2)), "partial", 1.0, 3.0),
            (None, "error", 0.0, 0.0),
        ] {
            let m = to_metrics(report.as_ref(), Metrics::new("N", FUNCTION));
            assert_eq!(m.outcome(), outcome, "{report:?}");
            assert!(OUTCOMES.contains(&outcome));
            assert_eq!(m.get("DatabasesReclaimed"), Some(&[databases][..]));
            assert_eq!(m.get("ItemsReclaimed"), Some(&[items][..]));
        }
    }
}
