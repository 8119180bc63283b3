use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use evidentsource_domain::{Error, ErrorCode};

/// What can go wrong in the storage layer, told apart by what the caller
/// should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The request was refused on its merits (not found, already exists,
    /// failed precondition, invalid argument): answer the caller with it.
    #[error(transparent)]
    Rejected(#[from] Error),
    /// DynamoDB is throttling, unreachable or failing, or contention did not
    /// settle: nothing was committed, or the commit's outcome is unknown.
    /// Retrying is safe with a transaction id.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The deployment is wrong (no permission, no such table, bad
    /// credentials): every request fails until an operator fixes it, and
    /// then the same request succeeds.
    #[error("storage misconfigured: {0}")]
    Misconfigured(String),
    /// Corrupt data or a request DynamoDB refuses as such: retrying the
    /// same request will not help.
    #[error("storage fault: {0}")]
    Fault(String),
}

impl StoreError {
    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// The error in the fixed set of codes (transient and fault → INTERNAL).
    pub fn to_domain(&self) -> Error {
        match self {
            StoreError::Rejected(e) => e.clone(),
            StoreError::Unavailable(m) => Error::new(
                ErrorCode::Internal,
                None,
                format!("storage unavailable, retry: {m}"),
            ),
            StoreError::Misconfigured(m) => Error::internal(format!("storage misconfigured: {m}")),
            StoreError::Fault(m) => Error::internal(format!("storage fault: {m}")),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::Rejected(e) => e.code,
            _ => ErrorCode::Internal,
        }
    }
}

/// The one conversion of an error that is a bug here, not a state of the
/// table (a request the SDK refuses to build, an item that does not
/// serialize), into a [`StoreError::Fault`] with the error's text.
pub(crate) fn fault(e: impl std::fmt::Display) -> StoreError {
    StoreError::Fault(e.to_string())
}

/// DynamoDB error codes that mean "try again later".
const TRANSIENT_CODES: [&str; 8] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "TransactionConflictException",
    "LimitExceededException",
];

/// DynamoDB error codes that mean the deployment is wrong.
const CONFIGURATION_CODES: [&str; 9] = [
    "AccessDeniedException",
    "ResourceNotFoundException",
    "UnrecognizedClientException",
    "MissingAuthenticationTokenException",
    "InvalidSignatureException",
    "IncompleteSignature",
    "ExpiredTokenException",
    "KMSAccessDeniedException",
    "KMSDisabledException",
];

/// Cancellation reasons of a transaction that mean "try again later".
pub(crate) const TRANSIENT_REASONS: [&str; 3] = [
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "TransactionConflict",
];

/// Classifies an SDK error: network trouble and throttling are transient,
/// permission and resource errors are misconfiguration, everything else is
/// a fault.
pub(crate) fn classify<E, R>(operation: &str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(format!("{operation}: {}", describe(&err)))
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            let message = service.err().message().unwrap_or("");
            if TRANSIENT_CODES.contains(&code) {
                StoreError::Unavailable(format!("{operation}: {code}: {message}"))
            } else if CONFIGURATION_CODES.contains(&code) {
                StoreError::Misconfigured(format!("{operation}: {code}: {message}"))
            } else {
                StoreError::Fault(format!("{operation}: {code}: {message}"))
            }
        }
        _ => StoreError::Fault(format!("{operation}: {}", describe(&err))),
    }
}

fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
