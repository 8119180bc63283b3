//! What one invocation of the async commands function reports to
//! CloudWatch (EMF, see `evidentsource_runtime::metrics` and
//! docs/metrics.md).

use std::time::Duration;

use evidentsource_runtime::metrics::{self, Metrics};

use crate::BatchReport;

/// The crate's short name: the `FunctionName` dimension outside Lambda.
pub const FUNCTION: &str = "async-commands";

/// The `Outcome` dimension's values. One record per invocation has one
/// outcome: the batch's worst (`failed`: it is delivered again; `rejected`:
/// a command was answered with an error; `succeeded`: all executed or
/// replayed). `CommandsRejected` counts the rejected ones exactly.
pub const OUTCOMES: &[&str] = &["succeeded", "rejected", "failed"];

/// The batch's outcome: `failed` when the invocation returned an error.
pub fn outcome(report: &BatchReport, failed: bool) -> &'static str {
    match (failed, report.refused > 0) {
        (true, _) => "failed",
        (false, true) => "rejected",
        (false, false) => "succeeded",
    }
}

/// The invocation's record on `metrics`.
pub fn to_metrics(report: &BatchReport, failed: bool, mut metrics: Metrics) -> Metrics {
    metrics
        .set_outcome(outcome(report, failed))
        .count("Commands", report.records as u64)
        .count("CommandsRejected", report.refused as u64);
    for latency in &report.response_latencies {
        metrics.millis("ResponseLatency", Duration::from_millis(*latency));
    }
    metrics
}

/// The record as the function emits it.
pub fn for_invocation(report: &BatchReport, failed: bool) -> Metrics {
    to_metrics(report, failed, Metrics::from_env(FUNCTION))
}

/// Ms from `timestamp` (a Kafka record's, ms since the epoch) to now; None
/// without a timestamp (0 or less: not set by the producer).
pub fn latency_since(timestamp: i64) -> Option<u64> {
    latency_between(timestamp, metrics::now_millis())
}

fn latency_between(timestamp: i64, now: u64) -> Option<u64> {
    let timestamp = u64::try_from(timestamp).ok().filter(|t| *t > 0)?;
    Some(now.saturating_sub(timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_is_the_batchs_worst() {
        let clean = BatchReport {
            records: 2,
            executed: 2,
            ..Default::default()
        };
        let refused = BatchReport {
            refused: 1,
            ..clean.clone()
        };
        for (report, failed, expected) in [
            (&clean, false, "succeeded"),
            (&refused, false, "rejected"),
            (&clean, true, "failed"),
            (&refused, true, "failed"),
        ] {
            assert_eq!(outcome(report, failed), expected, "{report:?} {failed}");
            assert!(OUTCOMES.contains(&expected));
        }
    }

    #[test]
    fn each_delivered_response_is_one_latency_value() {
        let report = BatchReport {
            records: 3,
            executed: 3,
            refused: 1,
            response_latencies: vec![5, 7],
            ..Default::default()
        };
        let m = to_metrics(&report, false, Metrics::new("N", FUNCTION));
        assert_eq!(m.get("Commands"), Some(&[3.0][..]));
        assert_eq!(m.get("CommandsRejected"), Some(&[1.0][..]));
        assert_eq!(m.get("ResponseLatency"), Some(&[5.0, 7.0][..]));
        assert_eq!(m.outcome(), "rejected");
    }

    #[test]
    fn a_latency_needs_a_timestamp() {
        for (timestamp, now, expected) in [
            (1_000, 1_250, Some(250)),
            (0, 1_250, None),
            (-1, 1_250, None),
            (2_000, 1_250, Some(0)),
        ] {
            assert_eq!(
                latency_between(timestamp, now),
                expected,
                "{timestamp} {now}"
            );
        }
    }
}
