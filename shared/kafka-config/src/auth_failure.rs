//! Telling a broker that refuses us apart from one that is merely down.
//!
//! librdkafka treats a wrong password or an untrusted broker certificate
//! like any connection failure: it reports the error once (identical errors
//! are suppressed for 30 s per broker) and reconnects with backoff forever,
//! so a producer or admin request just waits out its timeout. Retrying
//! cannot fix these two, so the suite's clients recognise them (see
//! [`crate::KafkaContext`]) and stop with an error that names the setting
//! to fix.

use std::path::Path;

use rdkafka::{error::KafkaError, types::RDKafkaErrorCode};

use crate::{KafkaSettings, SaslMechanism};

/// Which handshake the broker refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailureKind {
    /// SASL: wrong user name or password, or an MSK IAM token refused.
    Sasl,
    /// TLS: the broker's certificate does not verify (unknown CA, or it does
    /// not name the host we connect to).
    UntrustedCertificate,
    /// TLS failed for another reason (e.g. no common protocol version).
    Tls,
}

/// The broker refused our credentials or we refused its certificate: a
/// setting is wrong, and retrying will not help.
///
/// The message never contains a password: it is made of librdkafka's
/// reason (which never quotes one, and passes through
/// [`crate::KafkaContext`]'s redaction too) and the name of the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct KafkaAuthError {
    pub kind: AuthFailureKind,
    /// What to check, naming the environment variable.
    pub hint: String,
    /// librdkafka's reason.
    pub detail: String,
}

impl KafkaAuthError {
    fn describe(&self) -> String {
        let what = match self.kind {
            AuthFailureKind::Sasl => "SASL authentication failed",
            AuthFailureKind::UntrustedCertificate => "TLS: the broker's certificate is not trusted",
            AuthFailureKind::Tls => "TLS handshake with the broker failed",
        };
        format!("{what} ({}): {}", self.hint, self.detail)
    }
}

/// The kind of a refusal, or `None` for errors retrying can fix (a broker
/// down or restarting, a timeout, a disconnect in the middle of a
/// handshake).
pub fn classify(error: &KafkaError, reason: &str) -> Option<AuthFailureKind> {
    let untrusted = [
        "certificate verify failed",
        "Failed to verify broker certificate",
        "Broker did not provide a certificate",
    ]
    .iter()
    .any(|s| reason.contains(s));
    match error.rdkafka_error_code()? {
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => {
            Some(AuthFailureKind::Sasl)
        }
        RDKafkaErrorCode::SSL if untrusted => Some(AuthFailureKind::UntrustedCertificate),
        RDKafkaErrorCode::SSL => Some(AuthFailureKind::Tls),
        // librdkafka reports disconnects during the handshake as transport
        // errors; only a failed verification among them is for sure ours.
        _ if untrusted => Some(AuthFailureKind::UntrustedCertificate),
        _ => None,
    }
}

/// What a refusal tells the operator to check, from the settings in use.
#[derive(Debug, Clone)]
pub(crate) struct Hints {
    pub sasl: String,
    pub tls: String,
}

impl Default for Hints {
    fn default() -> Self {
        Hints {
            sasl: "check the username/password or the secret KAFKA_SASL_SECRET_ARN".into(),
            tls: "check KAFKA_SSL_CA_LOCATION / KAFKA_SSL_CA_SECRET_ARN and that the broker's \
                  certificate names the host in KAFKA_BROKERS"
                .into(),
        }
    }
}

impl Hints {
    pub fn for_settings(settings: &KafkaSettings) -> Hints {
        let sasl = match (settings.mechanism, &settings.sasl_secret_id) {
            (Some(SaslMechanism::AwsMskIam), _) => {
                "check that the function's IAM role may kafka-cluster:Connect to the cluster \
                 (AWS_MSK_IAM)"
                    .to_owned()
            }
            (_, Some(id)) => format!(
                "check the username and password in the secret KAFKA_SASL_SECRET_ARN ({id}) \
                 and KAFKA_SASL_MECHANISM"
            ),
            _ => {
                "check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM".to_owned()
            }
        };
        let names_host = "and that the broker's certificate names the host in KAFKA_BROKERS";
        let tls = match (&settings.ca_secret_id, &settings.ca_location) {
            (Some(id), _) => format!(
                "check the CA certificate in the secret KAFKA_SSL_CA_SECRET_ARN ({id}) {names_host}"
            ),
            (None, Some(path)) => format!(
                "check the CA certificate in KAFKA_SSL_CA_LOCATION ({}) {names_host}",
                Path::new(path).display()
            ),
            (None, None) => format!(
                "the system's trust store was used: for a private CA set KAFKA_SSL_CA_LOCATION \
                 or KAFKA_SSL_CA_SECRET_ARN; check {names_host}"
            ),
        };
        Hints { sasl, tls }
    }

    pub fn error(&self, kind: AuthFailureKind, detail: &str) -> KafkaAuthError {
        KafkaAuthError {
            kind,
            hint: match kind {
                AuthFailureKind::Sasl => self.sasl.clone(),
                _ => self.tls.clone(),
            },
            detail: detail.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(code: RDKafkaErrorCode) -> KafkaError {
        KafkaError::Global(code)
    }

    #[test]
    fn refusals_are_told_from_outages() {
        let cases = [
            (
                RDKafkaErrorCode::Authentication,
                "sasl_ssl://b:9096/bootstrap: SASL authentication error: Authentication failed",
                Some(AuthFailureKind::Sasl),
            ),
            (
                RDKafkaErrorCode::SSL,
                "ssl://b:9094/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed",
                Some(AuthFailureKind::UntrustedCertificate),
            ),
            (
                RDKafkaErrorCode::SSL,
                "ssl://b:9094/bootstrap: SSL handshake failed: error:0A00042E:SSL routines::tlsv1 alert protocol version",
                Some(AuthFailureKind::Tls),
            ),
            (
                RDKafkaErrorCode::BrokerTransportFailure,
                "ssl://b:9094/bootstrap: SSL handshake failed: Disconnected: connecting to a PLAINTEXT broker listener?",
                None,
            ),
            (
                RDKafkaErrorCode::BrokerTransportFailure,
                "b:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused",
                None,
            ),
            (
                RDKafkaErrorCode::AllBrokersDown,
                "1/1 brokers are down",
                None,
            ),
        ];
        for (code, reason, expected) in cases {
            assert_eq!(classify(&global(code), reason), expected, "{reason}");
        }
    }

    #[test]
    fn the_message_names_the_setting() {
        let hints = Hints::default();
        let e = hints.error(AuthFailureKind::Sasl, "SASL authentication error: bad");
        assert!(
            e.to_string().starts_with("SASL authentication failed ("),
            "{e}"
        );
        assert!(e.to_string().contains("KAFKA_SASL_SECRET_ARN"), "{e}");
        let e = hints.error(AuthFailureKind::UntrustedCertificate, "verify failed");
        assert!(e.to_string().contains("KAFKA_SSL_CA_LOCATION"), "{e}");
    }
}
