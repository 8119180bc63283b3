//! What every Lambda function's `main` needs and is neither storage nor
//! Kafka: the invocation's [`Deadline`], and [`EnvError`], the one error of
//! a setting read from the environment (storage's `TABLE_NAME`, the Kafka
//! settings, `BASE_URI`, ...). No AWS SDK here: the stream publisher links
//! this without linking DynamoDB's client.

mod deadline;
mod env;

pub use deadline::Deadline;
pub use env::EnvError;
