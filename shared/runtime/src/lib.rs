//! What every Lambda function's `main` needs and is neither storage nor
//! Kafka: the invocation's [`Deadline`], [`EnvError`], the one error of a
//! setting read from the environment (storage's `TABLE_NAME`, the Kafka
//! settings, `BASE_URI`, ...), and [`metrics`], the invocation's CloudWatch
//! EMF record. No AWS SDK here: the stream publisher links this without
//! linking DynamoDB's client.

mod deadline;
mod env;
pub mod metrics;

pub use deadline::Deadline;
pub use env::EnvError;
