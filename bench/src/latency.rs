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

/// Nanoseconds moto has spent handling requests since it started
/// (`scripts/moto_server.py`, `GET /_moto_server/busy`); `None` if it does
/// not answer. Over a window, busy time / wall time tells a run that moto's
/// one-at-a-time queue limits (near 100 %) from one its clients limit.
pub fn moto_busy(endpoint: &str) -> Option<u64> {
    use std::io::{Read, Write};
    let authority = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(authority).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        stream,
        "GET /_moto_server/busy HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return None;
    }
    body.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use evidentsource_local_servers::{dynamodb_client, shared};

    use super::*;

    /// The busy time only grows, and by what a request took moto.
    #[tokio::test]
    async fn moto_tells_how_long_it_was_busy() {
        let endpoint = &shared().dynamodb_endpoint;
        let before = moto_busy(endpoint).expect("moto answers how long it was busy");
        dynamodb_client(endpoint)
            .list_tables()
            .send()
            .await
            .expect("list tables");
        let after = moto_busy(endpoint).expect("moto answers how long it was busy");
        assert!(after > before, "{before} ns, then {after} ns");
        // Not a DynamoDB endpoint that answers the path: no figure.
        assert_eq!(moto_busy("127.0.0.1:1"), None);
    }
}
