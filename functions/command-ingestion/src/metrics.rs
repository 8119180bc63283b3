//! What one request to command ingestion reports to CloudWatch (EMF, see
//! `evidentsource_runtime::metrics` and docs/metrics.md).

use std::{sync::Mutex, time::Duration};

use evidentsource_domain::ErrorCode;
use evidentsource_runtime::metrics::Metrics;
use evidentsource_storage::{CommitPlanSummary, StoreError};

/// The crate's short name: the `FunctionName` dimension outside Lambda.
pub const FUNCTION: &str = "command-ingestion";

/// The `Outcome` dimension's values.
pub const OUTCOMES: &[&str] = &["ok", "client_error", "server_error"];

/// What became of the request's commit, if it made one.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CommitMeasure {
    pub commits: u64,
    /// Commit attempts after the first (another writer won the race, or the
    /// head this instance remembered was stale).
    pub retries: u64,
    /// An append condition that did not hold (409 FAILED_PRECONDITION).
    pub condition_failures: u64,
    pub latency: Option<Duration>,
}

impl CommitMeasure {
    /// From a commit's result and the time it took.
    pub fn of(result: &Result<CommitPlanSummary, &StoreError>, latency: Duration) -> Self {
        let mut measure = CommitMeasure {
            latency: Some(latency),
            ..Default::default()
        };
        match result {
            Ok(cost) => {
                measure.commits = 1;
                measure.retries = u64::from(cost.write_round_trips.saturating_sub(1));
            }
            Err(StoreError::Rejected(e)) if e.code == ErrorCode::FailedPrecondition => {
                measure.condition_failures = 1;
            }
            Err(_) => {}
        }
        measure
    }
}

/// One request's measures; the commit is filled by the route that commits
/// (behind a lock: the route holds only a shared reference).
#[derive(Debug, Default)]
pub struct RequestMetrics {
    pub status: u16,
    /// The contract's problem code of an error response.
    pub error_code: Option<ErrorCode>,
    pub commit: Mutex<CommitMeasure>,
    pub latency: Duration,
}

/// The outcome of a response's status.
pub fn outcome(status: u16) -> &'static str {
    match status {
        500.. => "server_error",
        400..=499 => "client_error",
        _ => "ok",
    }
}

impl RequestMetrics {
    pub fn set_commit(&self, measure: CommitMeasure) {
        *self.commit.lock().unwrap_or_else(|e| e.into_inner()) = measure;
    }

    /// The request's record on `metrics` (namespace and function name).
    pub fn to_metrics(&self, mut metrics: Metrics) -> Metrics {
        let commit = self
            .commit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let outcome = outcome(self.status);
        metrics
            .set_outcome(outcome)
            .count("Commits", commit.commits)
            .count("CommitRetries", commit.retries)
            .count("ConditionFailures", commit.condition_failures)
            .count("ClientErrors", u64::from(outcome == "client_error"))
            .count("ServerErrors", u64::from(outcome == "server_error"))
            .millis("RequestLatency", self.latency);
        if let Some(latency) = commit.latency {
            metrics.millis("CommitLatency", latency);
        }
        if let Some(code) = self.error_code.filter(|_| self.status >= 400) {
            metrics.set_error_code(code.as_str());
        }
        metrics
    }

    /// The record as the function emits it.
    pub fn for_invocation(&self) -> Metrics {
        self.to_metrics(Metrics::from_env(FUNCTION))
    }
}

#[cfg(test)]
mod tests {
    use evidentsource_domain::Error;

    use super::*;

    #[test]
    fn outcome_by_status() {
        for (status, expected) in [
            (200, "ok"),
            (201, "ok"),
            (202, "ok"),
            (400, "client_error"),
            (404, "client_error"),
            (409, "client_error"),
            (499, "client_error"),
            (500, "server_error"),
            (503, "server_error"),
        ] {
            assert_eq!(outcome(status), expected, "{status}");
            assert!(OUTCOMES.contains(&expected));
        }
    }

    #[test]
    fn a_commit_counts_its_retries_and_a_failed_condition_counts_once() {
        let ms = Duration::from_millis;
        let cost = |write_round_trips| CommitPlanSummary {
            write_round_trips,
            ..Default::default()
        };
        let failed = StoreError::Rejected(Error::new(ErrorCode::FailedPrecondition, None, "x"));
        let missing = StoreError::Rejected(Error::new(ErrorCode::NotFound, None, "x"));
        let busy = StoreError::Unavailable("busy".into());
        for (result, commits, retries, condition_failures) in [
            (Ok(cost(1)), 1, 0, 0),
            (Ok(cost(3)), 1, 2, 0),
            (Ok(cost(0)), 1, 0, 0),
            (Err(&failed), 0, 0, 1),
            (Err(&missing), 0, 0, 0),
            (Err(&busy), 0, 0, 0),
        ] {
            let what = format!("{result:?}");
            assert_eq!(
                CommitMeasure::of(&result, ms(4)),
                CommitMeasure {
                    commits,
                    retries,
                    condition_failures,
                    latency: Some(ms(4)),
                },
                "{what}"
            );
        }
    }

    #[test]
    fn an_error_response_carries_its_code_as_a_dimension() {
        let request = RequestMetrics {
            status: 409,
            error_code: Some(ErrorCode::FailedPrecondition),
            latency: Duration::from_millis(9),
            ..Default::default()
        };
        let m = request.to_metrics(Metrics::new("N", FUNCTION));
        let record = m.record(0);
        assert_eq!(record["ErrorCode"], "FAILED_PRECONDITION");
        assert_eq!(record["Outcome"], "client_error");
        assert_eq!(record["ClientErrors"], 1.0);
        assert_eq!(record["ServerErrors"], 0.0);
        assert_eq!(m.get("CommitLatency"), None, "no commit, no latency");
        let ok = RequestMetrics {
            status: 200,
            error_code: None,
            ..Default::default()
        };
        assert!(
            ok.to_metrics(Metrics::new("N", FUNCTION))
                .record(0)
                .get("ErrorCode")
                .is_none()
        );
    }
}
