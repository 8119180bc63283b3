//! The operator tool's logic, one module per command group; `main.rs` only
//! parses arguments ([`args`]) and maps outcomes to exit codes.
//!
//! - [`topics`]: the suite's Kafka topics (create, verify);
//! - [`databases`]: the databases in the table (list, describe);
//! - [`republish`]: a database's events sent again, byte-identical to the
//!   originals (docs/replay.md);
//! - [`dlq`]: the publisher's dead-letter queue drained by republishing.

pub mod args;
pub mod databases;
pub mod dlq;
pub mod republish;
pub mod topics;

pub use topics::{
    Admin, AdminError, Created, Finding, ONE_DAY_MS, SEVEN_DAYS_MS, TopicSpec, recommended,
};
