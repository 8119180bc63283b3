//! The store's side of an invocation's deadline. [`Deadline`] itself, the
//! arithmetic from Lambda's deadline, lives in `evidentsource-runtime`
//! (every function's `main` needs it, not only those that store).

pub use evidentsource_runtime::Deadline;

use crate::StoreError;

/// The error of a call abandoned at the deadline.
pub(crate) fn out_of_time(operation: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "{operation}: not answered before the invocation's deadline"
    ))
}
