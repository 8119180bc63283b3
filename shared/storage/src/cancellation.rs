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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_dynamodb::{
        error::ErrorMetadata,
        types::{
            AttributeValue, CancellationReason,
            error::{ResourceNotFoundException, TransactionCanceledException},
        },
    };

    use super::*;

    type Item = HashMap<String, AttributeValue>;

    const FAILED: Option<&str> = Some("ConditionalCheckFailed");
    const PASSED: Option<&str> = Some("None");

    /// A `TransactionCanceledException` as DynamoDB answers it: one reason
    /// per item (`None`: no code), and the item of each reason that has one.
    fn cancelled_with(
        reasons: Vec<(Option<&str>, Option<Item>)>,
    ) -> SdkError<TransactWriteItemsError, ()> {
        let reasons = reasons
            .into_iter()
            .map(|(code, item)| {
                CancellationReason::builder()
                    .set_code(code.map(str::to_owned))
                    .set_item(item)
                    .build()
            })
            .collect();
        let e = TransactionCanceledException::builder()
            .message("Transaction cancelled")
            .set_cancellation_reasons(Some(reasons))
            .meta(
                ErrorMetadata::builder()
                    .code("TransactionCanceledException")
                    .message("Transaction cancelled")
                    .build(),
            )
            .build();
        SdkError::service_error(TransactWriteItemsError::TransactionCanceledException(e), ())
    }

    fn cancelled(codes: &[Option<&str>]) -> SdkError<TransactWriteItemsError, ()> {
        cancelled_with(codes.iter().map(|c| (*c, None)).collect())
    }

    #[derive(Debug, PartialEq)]
    enum Class {
        Unavailable,
        Misconfigured,
        Fault,
    }

    fn class(e: &StoreError) -> Class {
        match e {
            StoreError::Unavailable(_) => Class::Unavailable,
            StoreError::Misconfigured(_) => Class::Misconfigured,
            StoreError::Fault(_) => Class::Fault,
            StoreError::Rejected(e) => panic!("a cancellation rejected as {e}"),
        }
    }

    #[test]
    fn cancellation_reasons_are_read_and_classified() {
        use Class::*;
        // (the reason of each item; the items whose condition failed; a
        // conflict to retry for the head at 0; the error when not retried).
        type Row = (
            &'static [Option<&'static str>],
            &'static [usize],
            bool,
            Class,
        );
        let table: [Row; 13] = [
            // Lost the race for the head (commit, delete) or the name is
            // taken (create).
            (&[FAILED, PASSED, PASSED], &[0], true, Fault),
            // A reply is recorded: delete (item 2), create (item 1).
            (&[PASSED, PASSED, FAILED], &[2], false, Fault),
            (&[PASSED, FAILED], &[1], false, Fault),
            // The transaction id's record exists (after one chunk).
            (&[PASSED, PASSED, FAILED], &[2], false, Fault),
            // Head and reply both failed: each is reported.
            (&[FAILED, PASSED, FAILED], &[0, 2], true, Fault),
            // Another transaction on an item: retry, and transient.
            (
                &[PASSED, Some("TransactionConflict")],
                &[],
                true,
                Unavailable,
            ),
            (&[Some("ThrottlingError"), PASSED], &[], false, Unavailable),
            (
                &[PASSED, Some("ProvisionedThroughputExceeded")],
                &[],
                false,
                Unavailable,
            ),
            // A transient reason makes the whole cancellation transient.
            (&[FAILED, Some("ThrottlingError")], &[0], true, Unavailable),
            // Bad input or an item too large: no retry helps.
            (&[Some("ValidationError")], &[], false, Fault),
            (
                &[Some("ItemCollectionSizeLimitExceeded"), PASSED],
                &[],
                false,
                Fault,
            ),
            // An item without a code, and no reasons at all.
            (&[None, PASSED], &[], false, Fault),
            (&[], &[], false, Fault),
        ];
        for (codes, failed, conflict, expected) in table {
            let err = cancelled(codes);
            let reasons = cancellation(&err).expect("a cancellation");
            let read: Cancellation = codes.iter().map(|c| c.map(str::to_owned)).collect();
            assert_eq!(reasons, read, "{codes:?}");
            let failed_at: Vec<usize> = (0..=codes.len())
                .filter(|i| failed_check(&reasons, *i))
                .collect();
            assert_eq!(failed_at, failed, "failed checks of {codes:?}");
            assert_eq!(
                retryable_conflict(&reasons, 0),
                conflict,
                "conflict in {codes:?}"
            );
            let error = classify_transaction("TransactWriteItems (test)", err);
            assert_eq!(class(&error), expected, "{codes:?}: {error}");
        }
    }

    #[test]
    fn what_a_classified_cancellation_says() {
        assert_eq!(
            classify_transaction("op", cancelled(&[PASSED, Some("ThrottlingError")])),
            StoreError::Unavailable("op: cancelled: None, ThrottlingError".into())
        );
        assert_eq!(
            classify_transaction("op", cancelled(&[FAILED])),
            StoreError::Fault("op: TransactionCanceledException: Transaction cancelled".into())
        );
    }

    #[test]
    fn other_errors_are_no_cancellation() {
        let missing = SdkError::service_error(
            TransactWriteItemsError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("no table")
                    .meta(
                        ErrorMetadata::builder()
                            .code("ResourceNotFoundException")
                            .message("no table")
                            .build(),
                    )
                    .build(),
            ),
            (),
        );
        assert_eq!(cancellation(&missing), None);
        assert_eq!(returned_head(&missing), None);
        assert_eq!(
            class(&classify_transaction("op", missing)),
            Class::Misconfigured
        );
        let slow: SdkError<TransactWriteItemsError, ()> = SdkError::timeout_error("slow");
        assert_eq!(cancellation(&slow), None);
        assert_eq!(class(&classify_transaction("op", slow)), Class::Unavailable);
    }

    #[test]
    fn the_head_a_cancelled_commit_returned() {
        let head = HeadItem::new("orders", "00ff".into(), 1_705_314_600_123);
        let image: Item = serde_dynamo::to_item(&head).unwrap();
        let returned = cancelled_with(vec![(FAILED, Some(image.clone())), (PASSED, None)]);
        assert_eq!(returned_head(&returned), Some(head));
        // Only the first item (the head's update) returns the head.
        let elsewhere = cancelled_with(vec![(PASSED, None), (FAILED, Some(image))]);
        assert_eq!(returned_head(&elsewhere), None);
        let not_a_head: Item = [("pk".to_owned(), AttributeValue::S("x".into()))].into();
        let garbled = cancelled_with(vec![(FAILED, Some(not_a_head))]);
        assert_eq!(returned_head(&garbled), None);
        assert_eq!(returned_head(&cancelled(&[])), None);
    }
}
