//! What one invocation of the indexer reports to CloudWatch (EMF, see
//! `evidentsource_runtime::metrics` and docs/metrics.md).

use evidentsource_runtime::metrics::{Metrics, Unit};

use crate::BatchReport;

/// The crate's short name: the `FunctionName` dimension outside Lambda.
pub const FUNCTION: &str = "indexer";

/// The `Outcome` dimension's values: `partial` when a database is reported
/// for retry (out of time or failed), `error` when the invocation failed.
pub const OUTCOMES: &[&str] = &["ok", "partial", "error"];

/// The invocation's record on `metrics`; `report` is None when the
/// invocation failed.
pub fn to_metrics(report: Option<&BatchReport>, mut metrics: Metrics) -> Metrics {
    let Some(report) = report else {
        metrics.set_outcome("error").count("EventsIndexed", 0);
        return metrics;
    };
    let progress = || {
        report
            .databases
            .iter()
            .filter_map(|d| d.result.as_ref().ok())
    };
    let outcome = if report.databases.iter().any(|d| d.failed()) {
        "partial"
    } else {
        "ok"
    };
    metrics
        .set_outcome(outcome)
        .count("EventsIndexed", progress().map(|p| p.events).sum())
        .count("IndexWriteUnits", progress().map(|p| p.write_units).sum());
    // The largest distance from a live database's watermark to its head,
    // as read after indexing: what conditions must read past the index.
    let lag = progress()
        .filter(|p| p.active)
        .map(|p| p.head.saturating_sub(p.watermark))
        .max();
    if let Some(lag) = lag {
        metrics.value("IndexLag", Unit::Count, lag as f64);
    }
    metrics
}

/// The record as the function emits it.
pub fn for_invocation(report: Option<&BatchReport>) -> Metrics {
    to_metrics(report, Metrics::from_env(FUNCTION))
}

#[cfg(test)]
mod tests {
    use aws_lambda_events::event::streams::DynamoDbEventResponse;
    use evidentsource_storage::{StoreError, index::writer::IndexProgress};

    use super::*;
    use crate::{DatabaseOutcome, batch::DatabaseWork};

    fn outcome(highest: u64, result: Result<IndexProgress, StoreError>) -> DatabaseOutcome {
        DatabaseOutcome {
            work: DatabaseWork {
                name: "db".into(),
                highest,
                incarnation: "i".into(),
                first: 0,
            },
            result,
        }
    }

    fn progress(watermark: u64, head: u64, events: u64, active: bool) -> IndexProgress {
        IndexProgress {
            watermark,
            head,
            events,
            write_units: events * 2,
            active,
            ..Default::default()
        }
    }

    #[test]
    fn lag_is_the_largest_live_distance_and_counts_add_up() {
        let report = BatchReport {
            databases: vec![
                outcome(5, Ok(progress(5, 5, 3, true))),
                outcome(9, Ok(progress(9, 12, 4, true))),
                // Deleted: its lag does not count.
                outcome(9, Ok(progress(0, 50, 0, false))),
                outcome(9, Err(StoreError::Unavailable("busy".into()))),
            ],
            malformed: 0,
            response: DynamoDbEventResponse::default(),
        };
        let m = to_metrics(Some(&report), Metrics::new("N", FUNCTION));
        assert_eq!(m.get("EventsIndexed"), Some(&[7.0][..]));
        assert_eq!(m.get("IndexWriteUnits"), Some(&[14.0][..]));
        assert_eq!(m.get("IndexLag"), Some(&[3.0][..]));
        assert_eq!(m.outcome(), "partial");
    }

    #[test]
    fn outcome_by_what_became_of_the_databases() {
        let report = |outcomes| BatchReport {
            databases: outcomes,
            malformed: 0,
            response: DynamoDbEventResponse::default(),
        };
        for (report, expected) in [
            (Some(report(vec![])), "ok"),
            (
                Some(report(vec![outcome(5, Ok(progress(5, 5, 1, true)))])),
                "ok",
            ),
            // Out of time short of the batch's records.
            (
                Some(report(vec![outcome(
                    9,
                    Ok(IndexProgress {
                        cut_short: true,
                        ..progress(5, 9, 1, true)
                    }),
                )])),
                "partial",
            ),
            (None, "error"),
        ] {
            let m = to_metrics(report.as_ref(), Metrics::new("N", FUNCTION));
            assert_eq!(m.outcome(), expected, "{report:?}");
            assert!(OUTCOMES.contains(&expected));
        }
    }
}
