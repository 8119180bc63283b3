//! The local runner: the four functions wired together as AWS wires them,
//! running their real handler code against local servers (moto, tansu).
//!
//! - [`api`]: API Gateway (HTTP API, payload 2.0) in front of command ingestion;
//! - [`banner`]: what the runner prints once the stack is up;
//! - [`stream_poller`]: the DynamoDB stream event source, twice: feeding the
//!   publisher and the indexer, each with the delivery rules of [`batcher`],
//!   the filters of [`filter`] and a checkpoint of its own ([`checkpoint`]);
//! - [`invoke`]: one invocation as Lambda runs it, and what a stream source
//!   makes of the answer;
//! - [`kafka_poller`]: the Kafka event source feeding the async commands
//!   (on demand, or provisioned with the same delivery rules and an
//!   on-failure queue);
//! - [`cfn`]: the CloudFormation the runner understands to read the template;
//! - [`template`]: their settings, read from `template.yaml`;
//! - [`stack`]: the runner's own settings, the servers, table and topics, and
//!   `.local/stack.env`;
//! - [`demo`]: the `make demo` scenario, a client of the public interfaces
//!   (HTTP API and Kafka topics) only.

pub mod api;
pub mod banner;
pub mod batcher;
pub mod cfn;
pub mod checkpoint;
pub mod demo;
pub mod filter;
pub mod http;
pub mod invoke;
pub mod kafka_failure;
pub mod kafka_poller;
pub mod stack;
pub mod stream_poller;
pub mod template;

use std::time::Duration;

use tokio::sync::watch;

/// The runner's stop signal, as seen by one loop.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A signal and the switch that sets it.
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown(rx))
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Sleeps for `duration`; false if woken by the signal instead.
    pub async fn sleep(&mut self, duration: Duration) -> bool {
        if self.is_set() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(duration) => true,
            _ = self.0.wait_for(|stop| *stop) => false,
        }
    }

    /// The receiver, for code that selects on it.
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.0.clone()
    }
}
