//! What a cancelled `TransactWriteItems` says: DynamoDB answers a
//! transaction whose conditions failed (or that met throttling or another
//! transaction) with a `TransactionCanceledException` giving one reason per
//! item, in the order the items were sent. The commit protocol, create and
//! delete read these reasons to tell a lost race from a taken name, a
//! recorded reply or a used transaction id; anything else is classified
//! here like any other SDK error.

use aws_sdk_dynamodb::{error::SdkError, operation::transact_write_items::TransactWriteItemsError};

use crate::{StoreError, error::classify, head::HeadItem};

/// The reason code of each item of a cancelled transaction, in the order
/// the items were sent (`None`: DynamoDB gave the item no code).
pub(crate) type Cancellation = Vec<Option<String>>;

/// [`classify`], and a transaction cancelled for throttling or a conflict
/// with another transaction is transient too.
pub(crate) fn classify_transaction<R: std::fmt::Debug>(
    operation: &str,
    err: SdkError<TransactWriteItemsError, R>,
) -> StoreError {
    match cancellation(&err) {
        Some(reasons)
            if reasons
                .iter()
                .flatten()
                .any(|r| crate::error::TRANSIENT_REASONS.contains(&r.as_str())) =>
        {
            let reasons: Vec<&str> = reasons.iter().flatten().map(String::as_str).collect();
            StoreError::Unavailable(format!("{operation}: cancelled: {}", reasons.join(", ")))
        }
        _ => classify(operation, err),
    }
}

/// The per-item reasons of a cancelled transaction.
pub(crate) fn cancellation<R>(err: &SdkError<TransactWriteItemsError, R>) -> Option<Cancellation> {
    match err.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(e) => Some(
            e.cancellation_reasons()
                .iter()
                .map(|r| r.code().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    }
}

/// The head item a cancelled commit returned (ALL_OLD on its condition).
pub(crate) fn returned_head<R>(err: &SdkError<TransactWriteItemsError, R>) -> Option<HeadItem> {
    match err.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(e) => {
            let item = e.cancellation_reasons().first()?.item()?.clone();
            HeadItem::from_item(item).ok()
        }
        _ => None,
    }
}

pub(crate) fn failed_check(reasons: &Cancellation, index: usize) -> bool {
    reasons.get(index).and_then(|r| r.as_deref()) == Some("ConditionalCheckFailed")
}

/// The head's condition failed (someone else committed), or DynamoDB saw
/// a conflicting transaction: both mean re-read and retry.
pub(crate) fn retryable_conflict(reasons: &Cancellation, head_index: usize) -> bool {
    failed_check(reasons, head_index)
        || reasons
            .iter()
            .any(|r| r.as_deref() == Some("TransactionConflict"))
}
