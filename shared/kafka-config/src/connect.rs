//! Connecting at cold start: early (so the first event does not wait for
//! it) and checked (so a wrong password or an untrusted certificate fails
//! the cold start with an error naming the setting, within seconds).

use std::time::{Duration, Instant};

use rdkafka::{
    ClientContext,
    client::Client,
    error::KafkaError,
    producer::{BaseProducer, FutureProducer, Producer},
};

use crate::{KafkaAuthError, KafkaContext, KafkaSettings};

/// How long one metadata request may take before the context is looked at
/// again: a refusal is noticed within about this long.
const SLICE: Duration = Duration::from_millis(250);

/// How long [`connect_early`] keeps asking before it leaves the rest to
/// librdkafka's own timers.
const EARLY: Duration = Duration::from_secs(10);

/// Metadata requests [`connect_early`] makes at most: the bootstrap
/// broker answers the first, a learned broker the second (or the first
/// again, retried by librdkafka after the bootstrap connection closed); the
/// bound keeps a cluster that never names its brokers from being asked in
/// a loop.
const EARLY_REQUESTS: usize = 3;

/// The node id librdkafka gives a broker of `bootstrap.servers` until the
/// cluster's metadata names it.
const BOOTSTRAP_NODE: i32 = -1;

/// Asks for `topic`'s metadata on a background thread until a broker of
/// the cluster (not a bootstrap address) has answered, so the producer is
/// connected and has its producer id before the first event arrives.
///
/// Why: an idempotent producer (ours all are) sends nothing before it has
/// a producer id, and librdkafka asks for one only when a metadata response
/// arrives while a broker it learned from the metadata is up, or when its
/// PID timer fires (500 ms after it gave up the last time). The first
/// metadata response always comes through the bootstrap connection, which
/// librdkafka (≥ 2.10) closes as soon as that response names the cluster's
/// brokers: at that moment no broker is up, the PID request is put off by
/// the 500 ms timer, and the learned broker, connected a moment later,
/// triggers nothing. So a first batch waited about half a second after
/// every cold start, unless some other metadata request happened to be
/// answered by the learned broker. Asking again until a learned broker
/// answers makes that happen on purpose: its answer runs librdkafka's PID
/// request at once (docs/PERFORMANCE.md, "First event after a cold start").
/// The learned broker is connected 11 ms after the bootstrap one at the
/// earliest (`reconnect.backoff.ms` in [`KafkaSettings::producer_config`]).
pub fn connect_early(producer: &FutureProducer<KafkaContext>, topic: &str) {
    let producer = producer.clone();
    let topic = topic.to_owned();
    std::thread::spawn(move || {
        if let Err(error) = warm_up(producer.client(), &topic, EARLY) {
            // Not fatal: sending connects as well, just later.
            tracing::warn!(%error, topic, "could not reach the brokers at cold start");
        }
    });
}

/// Fetches `topic`'s metadata until a learned broker answers (see
/// [`connect_early`]), [`EARLY_REQUESTS`] times at most, within `timeout`.
/// Blocks the calling thread.
fn warm_up<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    timeout: Duration,
) -> Result<(), KafkaError> {
    let started = Instant::now();
    for _ in 0..EARLY_REQUESTS {
        let left = timeout.saturating_sub(started.elapsed());
        let metadata = client.fetch_metadata(Some(topic), left)?;
        if metadata.orig_broker_id() != BOOTSTRAP_NODE {
            break;
        }
    }
    Ok(())
}

/// Why [`verify_connection`] found no working connection.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KafkaConnectError {
    /// A setting is wrong; retrying will not help.
    #[error(transparent)]
    Refused(#[from] KafkaAuthError),
    /// No answer in time (brokers down, network): may pass.
    #[error("no answer from the Kafka brokers within {waited:?}: {error}")]
    Unreachable { waited: Duration, error: String },
    #[error("cannot create the Kafka client: {0}")]
    Client(KafkaError),
}

/// Asks for metadata (of `topic`, or of the cluster) until the brokers
/// answer, `context` records a refused handshake, or `timeout` passes.
/// Blocks the calling thread.
///
/// `context` must be the context of `client`, and `client`'s events must be
/// served meanwhile, as they are for a `FutureProducer` (its own thread)
/// but not for an `AdminClient`: use [`probe_connection`] for those.
pub fn verify_connection<C: ClientContext>(
    client: &Client<C>,
    context: &KafkaContext,
    topic: Option<&str>,
    timeout: Duration,
) -> Result<(), KafkaConnectError> {
    verify(client, context, topic, timeout, || {})
}

/// [`verify_connection`] with a client of its own (a producer built from
/// `settings.client_config()`, whose events it serves itself): checks the
/// settings for clients that do not serve their events, such as admin
/// clients.
pub fn probe_connection(
    settings: &KafkaSettings,
    context: &KafkaContext,
    topic: Option<&str>,
    timeout: Duration,
) -> Result<(), KafkaConnectError> {
    let probe: BaseProducer<KafkaContext> = settings
        .client_config()
        .create_with_context(context.clone())
        .map_err(KafkaConnectError::Client)?;
    // poll() serves one event per call when given no time, and logs are
    // events too: give it a little time so that it drains the queue.
    verify(probe.client(), context, topic, timeout, || {
        probe.poll(Duration::from_millis(50))
    })
}

/// The cold-start check of a function: `Err` (fail the cold start) when
/// the brokers refuse the credentials or the certificate; brokers that do
/// not answer in time are only logged, since sending retries anyway.
pub fn cold_start_check<C: ClientContext>(
    client: &Client<C>,
    context: &KafkaContext,
    topic: &str,
    timeout: Duration,
) -> Result<(), KafkaAuthError> {
    match verify_connection(client, context, Some(topic), timeout) {
        Ok(()) => Ok(()),
        Err(KafkaConnectError::Refused(e)) => Err(e),
        Err(other) => {
            tracing::warn!(error = %other, topic, "could not check the Kafka connection at cold start");
            Ok(())
        }
    }
}

fn verify<C: ClientContext>(
    client: &Client<C>,
    context: &KafkaContext,
    topic: Option<&str>,
    timeout: Duration,
    serve_events: impl Fn(),
) -> Result<(), KafkaConnectError> {
    let started = Instant::now();
    let refused = || {
        serve_events();
        context.auth_failure_since(started)
    };
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        let error = match client.fetch_metadata(topic, left.min(SLICE)) {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        if let Some(e) = refused() {
            return Err(e.into());
        }
        if started.elapsed() >= timeout {
            return Err(KafkaConnectError::Unreachable {
                waited: started.elapsed(),
                error: error.to_string(),
            });
        }
    }
}
