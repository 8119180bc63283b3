//! Kafka settings for every function, in one place.
//!
//! [`KafkaSettings::from_env`] reads CONTRACT §3's variables once, at cold
//! start, and refuses contradictions with an error naming the variable.
//! [`KafkaSettings::client_config`] turns them into librdkafka properties
//! (the only place that does), and [`KafkaContext`] is the client context
//! every producer, consumer and admin client uses: with `AWS_MSK_IAM` it
//! answers librdkafka's OAUTHBEARER token refresh with a token signed by the
//! function's IAM role.

mod base_uri;
mod connect;
mod msk_iam;
mod resolve;
mod secret;
mod settings;
mod topics;

pub use base_uri::base_uri_from_lookup;
pub use connect::connect_early;
pub use msk_iam::{KafkaContext, MskIamTokenSource};
pub use secret::{Secret, load_sasl_secret};
pub use settings::{Credentials, KafkaConfigError, KafkaSettings, SaslMechanism, SecurityProtocol};
pub use topics::Topics;
