//! The Kafka side of the suite (feature `kafka`): submit a command to the
//! Async Commands topic and await its response ([`AsyncCommands`]), and
//! read the Database Events topic with duplicates skipped and gaps
//! reported ([`DatabaseEvents`]).
//!
//! Both take an rdkafka [`ClientConfig`](rdkafka::ClientConfig) holding
//! how to reach the cluster (`bootstrap.servers`, `security.protocol`,
//! SASL, TLS); the client adds what each role needs. Where the connection
//! needs a client context of its own (MSK IAM's OAUTHBEARER token
//! refresh), the `*_with_context` constructors take it.

mod command;
mod events;
mod responses;
mod submit;

pub use command::{AsyncCommand, CommandOutcome};
pub use events::{DatabaseEvents, Delivered, Next, StartAt};
pub use evidentsource_database_events::{
    ReceivedBody, ReceivedDatabaseEvent, SequenceProblem, SequenceTracker,
};
pub use submit::{AsyncCommands, CommandTopics, Submitted};
