//! Kafka settings for every function, in one place.
//!
//! [`KafkaSettings::from_env`] reads the variables of docs/contract.md §3 once, at cold
//! start, and refuses contradictions with an error naming the variable.
//! [`KafkaSettings::resolve`] loads what secrets hold (SASL credentials,
//! the brokers' CA). [`KafkaSettings::client_config`] turns them into
//! librdkafka properties (this crate is the only place that sets them), and
//! [`KafkaSettings::producer`] / [`KafkaSettings::consumer`] build every
//! client from a profile of what it is for ([`ProducerProfile`],
//! [`ConsumerProfile`]). [`KafkaContext`]
//! is the client context every producer, consumer and admin client uses:
//! it routes librdkafka's logs to `tracing` without passwords, answers the
//! OAUTHBEARER token refresh for `AWS_MSK_IAM`, and records a refused
//! handshake (wrong password, untrusted certificate) so that the suite
//! stops with a clear error instead of letting librdkafka retry forever
//! ([`verify_connection`], [`KafkaContext::auth_failed`]).

mod admin;
mod auth_failure;
mod base_uri;
mod ca_secret;
mod clients;
mod connect;
mod context;
mod flush;
mod msk_iam;
mod resolve;
mod secret;
mod settings;
mod topics;

pub use admin::ServedAdmin;
pub use auth_failure::{AuthFailureKind, KafkaAuthError};
pub use base_uri::base_uri_from_lookup;
pub use ca_secret::{load_ca_secret, parse_ca_secret};
pub use clients::{ConsumerProfile, ProducerProfile};
pub use connect::{
    KafkaConnectError, cold_start_check, connect_early, probe_connection, verify_connection,
};
pub use context::{KafkaContext, RECENT};
pub use flush::{Flushing, flush_queued};
pub use msk_iam::MskIamTokenSource;
pub use secret::{Secret, load_sasl_secret};
pub use settings::{Compression, Credentials, KafkaSettings, SaslMechanism, SecurityProtocol};

/// A setting read from the environment (a Kafka setting, `BASE_URI`) that
/// is missing, unknown or contradicts another: every function's one
/// environment-error type, from `evidentsource-runtime`.
pub use evidentsource_runtime::EnvError;
pub use topics::Topics;
