//! DynamoDB's network latency, stood in for on moto: an SDK interceptor
//! asks `scripts/moto_server.py` to wait before it queues a request
//! (`x-moto-latency-ms`), outside its one-request-at-a-time lock, so that
//! requests wait side by side as they would for DynamoDB, while moto's own
//! processing stays serialized.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use aws_sdk_dynamodb::config::{
    ConfigBag, Intercept, RuntimeComponents, interceptors::BeforeTransmitInterceptorContextMut,
};

/// The latency the benchmarks add where they compare with and without: a
/// stand-in for DynamoDB's own in-region latency, which requests sent side
/// by side overlap where moto's one-at-a-time queue adds them up.
pub const ADDED_LATENCY_MS: u64 = 5;

/// Asks moto to wait this many milliseconds before queueing each request
/// (0: not at all). Clones share the setting.
#[derive(Debug, Clone, Default)]
pub struct AddedLatency(Arc<AtomicU64>);

impl AddedLatency {
    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::Relaxed);
    }

    /// `client` with every request delayed by `ms`.
    pub fn client(ms: u64, client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        let latency = AddedLatency::default();
        latency.set(ms);
        latency.on(client)
    }

    /// `client` with every request delayed by what this is set to.
    pub fn on(&self, client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            client
                .config()
                .to_builder()
                .interceptor(self.clone())
                .build(),
        )
    }
}

impl Intercept for AddedLatency {
    fn name(&self) -> &'static str {
        "AddedLatency"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let ms = self.0.load(Ordering::Relaxed);
        if ms > 0 {
            context
                .request_mut()
                .headers_mut()
                .insert("x-moto-latency-ms", ms.to_string());
        }
        Ok(())
    }
}
