//! The client context of every Kafka client of the suite: librdkafka's
//! logs and errors go to `tracing` (never showing a password), an MSK IAM
//! token is signed when librdkafka asks for one, and a refused handshake
//! (wrong password, untrusted certificate) is recorded so that whoever
//! waits on the broker can stop at once with an error naming the setting
//! to fix, instead of waiting out a timeout while librdkafka retries.
//!
//! Clones share everything: a function's producers built from one context
//! report into one record.

use std::{
    error::Error,
    sync::Arc,
    time::{Duration, Instant},
};

use rdkafka::{
    ClientContext,
    client::OAuthToken,
    config::RDKafkaLogLevel,
    consumer::ConsumerContext,
    error::KafkaError,
    producer::{DeliveryResult, ProducerContext},
};
use tokio::sync::watch;

use crate::{
    KafkaSettings, MskIamTokenSource, Secret,
    auth_failure::{Hints, KafkaAuthError, classify},
};

/// How long a recorded refusal counts as current. librdkafka reports an
/// identical error of a broker at most once per 30 s, so a refusal that is
/// still going on was reported within the last 30 s.
pub const RECENT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Recorded {
    error: KafkaAuthError,
    at: Instant,
}

#[derive(Debug)]
struct Shared {
    hints: Hints,
    /// Strings never to show in a log line or error (the SASL password).
    redact: Vec<Secret>,
    last: watch::Sender<Option<Recorded>>,
}

/// The client context of every Kafka client of the suite.
#[derive(Debug, Clone)]
pub struct KafkaContext {
    msk_iam: Option<Arc<MskIamTokenSource>>,
    shared: Arc<Shared>,
}

impl Default for KafkaContext {
    fn default() -> Self {
        KafkaContext::with(Hints::default(), Vec::new(), None)
    }
}

impl KafkaContext {
    /// A context with generic hints; prefer [`KafkaContext::for_settings`].
    pub fn new(msk_iam: Option<Arc<MskIamTokenSource>>) -> Self {
        KafkaContext::with(Hints::default(), Vec::new(), msk_iam)
    }

    /// A context whose errors name the variables `settings` came from and
    /// whose logs never show its password. [`KafkaSettings::resolve`] makes
    /// one; make one after it when building clients by hand.
    pub fn for_settings(settings: &KafkaSettings, msk_iam: Option<Arc<MskIamTokenSource>>) -> Self {
        let redact = settings
            .credentials
            .iter()
            .map(|c| c.password.clone())
            .filter(|p| !p.expose().is_empty())
            .collect();
        KafkaContext::with(Hints::for_settings(settings), redact, msk_iam)
    }

    fn with(hints: Hints, redact: Vec<Secret>, msk_iam: Option<Arc<MskIamTokenSource>>) -> Self {
        KafkaContext {
            msk_iam,
            shared: Arc::new(Shared {
                hints,
                redact,
                last: watch::channel(None).0,
            }),
        }
    }

    pub fn msk_iam(&self) -> Option<&Arc<MskIamTokenSource>> {
        self.msk_iam.as_ref()
    }

    /// The last refused handshake, however long ago.
    pub fn auth_failure(&self) -> Option<KafkaAuthError> {
        self.shared.last.borrow().as_ref().map(|r| r.error.clone())
    }

    /// A refused handshake recorded at or after `since`.
    pub fn auth_failure_since(&self, since: Instant) -> Option<KafkaAuthError> {
        self.shared
            .last
            .borrow()
            .as_ref()
            .filter(|r| r.at >= since)
            .map(|r| r.error.clone())
    }

    /// A refused handshake that is still current (see [`RECENT`]).
    pub fn recent_auth_failure(&self) -> Option<KafkaAuthError> {
        let since = Instant::now()
            .checked_sub(RECENT)
            .unwrap_or_else(Instant::now);
        self.auth_failure_since(since)
    }

    /// Resolves with the current refusal, or the next one: race it against
    /// a wait on the broker (a delivery, an admin request) to stop that wait
    /// when retrying cannot help. Never resolves while handshakes succeed.
    pub async fn auth_failed(&self) -> KafkaAuthError {
        let since = Instant::now()
            .checked_sub(RECENT)
            .unwrap_or_else(Instant::now);
        let mut changes = self.shared.last.subscribe();
        // The borrow of the value ends here, so the future stays Send.
        let found = changes
            .wait_for(|r| r.as_ref().is_some_and(|r| r.at >= since))
            .await
            .map(|recorded| recorded.as_ref().map(|r| r.error.clone()));
        match found {
            Ok(Some(error)) => error,
            // The sender lives as long as this context.
            _ => std::future::pending().await,
        }
    }

    /// `text` with every secret replaced by `***`.
    fn redacted(&self, text: &str) -> String {
        self.shared
            .redact
            .iter()
            .fold(text.to_owned(), |t, s| t.replace(s.expose(), "***"))
    }

    fn record(&self, error: KafkaAuthError) {
        self.shared.last.send_replace(Some(Recorded {
            error,
            at: Instant::now(),
        }));
    }
}

impl ClientContext for KafkaContext {
    // librdkafka only asks when sasl.mechanism is OAUTHBEARER.
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        let message = self.redacted(log_message);
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", fac, "{message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", fac, "{message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let reason = self.redacted(reason);
        match classify(&error, &reason) {
            Some(kind) => {
                let refused = self.shared.hints.error(kind, &reason);
                tracing::error!(error = %refused, "the Kafka broker refused the connection");
                self.record(refused);
            }
            // Brokers restarting or unreachable: librdkafka reconnects.
            None => tracing::warn!(target: "librdkafka", %error, reason, "Kafka client error"),
        }
    }

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn Error>> {
        let source = self
            .msk_iam
            .as_ref()
            .ok_or("OAUTHBEARER is only supported with KAFKA_SASL_MECHANISM=AWS_MSK_IAM")?;
        source.token().map_err(|e| {
            tracing::error!(error = %e, "MSK IAM token refresh failed");
            e.into()
        })
    }
}

impl ProducerContext for KafkaContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _result: &DeliveryResult<'_>, _opaque: Self::DeliveryOpaque) {}
}

impl ConsumerContext for KafkaContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_for_a_refusal_can_move_between_threads() {
        fn is_send<T: Send>(_: &T) {}
        let context = KafkaContext::default();
        is_send(&context.auth_failed());
    }
}
