//! One invocation as Lambda runs it, and what a stream event source makes
//! of the function's answer.

use std::{fmt::Display, future::Future, time::Duration};

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use evidentsource_storage::Deadline;

use crate::batcher::Outcome;

/// Runs `handler` as Lambda runs an invocation: its deadline is the
/// function's timeout less the margin its `main.rs` keeps, and it is
/// stopped at the timeout.
pub async fn invoke<F, Fut, T, E>(timeout: Duration, handler: F) -> Result<T, String>
where
    F: FnOnce(tokio::time::Instant) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let deadline = Deadline::for_timeout(timeout).instant();
    match tokio::time::timeout(timeout, handler(deadline)).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("timed out after {timeout:?}")),
    }
}

/// A stream function's answer as its event source reads it: the failures
/// it reports count only with `ReportBatchItemFailures`
/// (`partial_batch_responses`); an error is a failed invocation.
pub fn stream_outcome(
    function: &str,
    answer: Result<DynamoDbEventResponse, String>,
    partial_batch_responses: bool,
) -> Outcome {
    match answer {
        Ok(response) if partial_batch_responses => Outcome::Returned(response),
        Ok(_) => Outcome::success(),
        Err(error) => {
            tracing::warn!(function, error, "the function failed");
            Outcome::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_lambda_events::event::streams::DynamoDbBatchItemFailure;

    use super::*;

    #[test]
    fn reported_failures_count_only_with_partial_batch_responses() {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some("7".into());
        let mut reported = DynamoDbEventResponse::default();
        reported.batch_item_failures.push(failure);
        let table = [
            (
                Ok(reported.clone()),
                true,
                Outcome::Returned(reported.clone()),
            ),
            (Ok(reported), false, Outcome::success()),
            (Err("boom".to_owned()), true, Outcome::Failed),
            (Err("boom".to_owned()), false, Outcome::Failed),
        ];
        for (answer, partial, expected) in table {
            let what = format!("{answer:?} {partial}");
            assert_eq!(stream_outcome("f", answer, partial), expected, "{what}");
        }
    }
}
