//! `KAFKA_SSL_CA_SECRET_ARN`: the brokers' CA from a Secrets Manager secret.
//!
//! The secret has the format Lambda's self-managed Kafka event source uses
//! for its server root CA (`SERVER_ROOT_CA_CERTIFICATE`):
//! `{"certificate": "-----BEGIN CERTIFICATE-----\n...-----END CERTIFICATE-----"}`,
//! so the functions and their event source mapping can share one secret.
//! It is read once at cold start ([`crate::KafkaSettings::resolve`]) and
//! handed to librdkafka as `ssl.ca.pem`: no file in the Lambda sandbox.

use crate::{EnvError, secret::secret_string};

const VAR: &str = "KAFKA_SSL_CA_SECRET_ARN";

/// Reads the CA certificate(s), PEM, from the secret.
pub async fn load_ca_secret(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<String, EnvError> {
    let text = secret_string(client, secret_id, VAR).await?;
    parse_ca_secret(&text)
        .map_err(|problem| EnvError::new(VAR, format!("secret {secret_id:?} {problem}")))
}

/// The PEM in a secret's value. The error never quotes the value.
pub fn parse_ca_secret(text: &str) -> Result<String, &'static str> {
    #[derive(serde::Deserialize)]
    struct Value {
        certificate: String,
    }
    // AWS's documentation shows the PEM with raw line breaks inside the
    // JSON string, which strict JSON forbids; such secrets exist, so they
    // are read as if the breaks were escaped.
    let value: Value = serde_json::from_str(text)
        .or_else(|_| serde_json::from_str(&escape_breaks_in_strings(text)))
        .map_err(|_| {
            "is not {\"certificate\": \"-----BEGIN CERTIFICATE-----...\"} \
             (the format of Lambda's SERVER_ROOT_CA_CERTIFICATE secret)"
        })?;
    let pem = value.certificate.trim();
    if !(pem.contains("-----BEGIN CERTIFICATE-----") && pem.contains("-----END CERTIFICATE-----")) {
        return Err("has a \"certificate\" that is not a PEM certificate");
    }
    Ok(format!("{pem}\n"))
}

/// Escapes CR, LF and tabs inside JSON strings, leaving the rest alone.
fn escape_breaks_in_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        match c {
            '\n' if in_string => out.push_str("\\n"),
            '\r' if in_string => out.push_str("\\r"),
            '\t' if in_string => out.push_str("\\t"),
            _ => {
                if in_string && !escaped && c == '"' {
                    in_string = false;
                } else if !in_string && c == '"' {
                    in_string = true;
                }
                escaped = in_string && !escaped && c == '\\';
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";

    #[test]
    fn strict_and_documented_forms() {
        let strict = serde_json::json!({ "certificate": PEM }).to_string();
        assert_eq!(parse_ca_secret(&strict).unwrap(), format!("{PEM}\n"));
        // As in AWS's documentation: raw line breaks in the string.
        let raw = format!("{{\"certificate\":\"{PEM}\"\n}}");
        assert_eq!(parse_ca_secret(&raw).unwrap(), format!("{PEM}\n"));
        // An escaped quote does not end the string.
        let quoted = "{\"certificate\": \"x\\\"\ny\"}";
        assert_eq!(
            parse_ca_secret(quoted).unwrap_err(),
            "has a \"certificate\" that is not a PEM certificate"
        );
    }

    #[test]
    fn errors_do_not_quote_the_secret() {
        for bad in [
            "MIIB-not-json",
            "{\"cert\": \"-----BEGIN CERTIFICATE-----\"}",
            "{\"certificate\": \"MIIB-not-pem\"}",
        ] {
            let e = parse_ca_secret(bad).unwrap_err();
            assert!(!e.contains("MIIB"), "{e}");
        }
    }
}
