//! The rules of an EvidentSource database that hold whatever the storage or
//! transport: which names are valid, which stream an event belongs to, how
//! selectors choose events and when append conditions hold, and the fixed
//! set of error codes every interface reports.
//!
//! Pure code: no I/O, no clocks.

mod condition;
mod error;
mod name;
pub mod quote;
mod selector;
mod stream;
mod transaction;

pub use condition::{AppendCondition, Bound, ConditionCheck, evaluate};
pub use error::{Error, ErrorCode};
pub use name::{DatabaseName, StreamName, validate_name};
pub use quote::{bound, quote};
pub use selector::{EventFacts, Selector, SelectorLimits};
pub use stream::stream_of_source;
pub use transaction::{Limits, OwnedFacts, Transaction, data_len, subject_of};
