use std::fmt;

use crate::{Credentials, EnvError};

/// A secret string: never shown by `Debug` or `Display`, so it cannot reach
/// a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must hand it to librdkafka.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A secret's string value; errors name `var` and the secret, never its
/// content.
pub(crate) async fn secret_string(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    var: &'static str,
) -> Result<String, EnvError> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| {
            EnvError::new(
                var,
                format!(
                    "cannot read secret {secret_id:?}: {}",
                    e.into_service_error()
                ),
            )
        })?;
    out.secret_string()
        .map(str::to_owned)
        .ok_or_else(|| EnvError::new(var, format!("secret {secret_id:?} has no string value")))
}

/// Reads SASL credentials from a Secrets Manager secret whose value is
/// `{"username": "...", "password": "..."}` (the format MSK uses for SCRAM
/// secrets). Called once per cold start.
pub async fn load_sasl_secret(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<Credentials, EnvError> {
    const VAR: &str = "KAFKA_SASL_SECRET_ARN";
    let text = secret_string(client, secret_id, VAR).await?;
    #[derive(serde::Deserialize)]
    struct Value {
        username: String,
        password: String,
    }
    // The parse error is not shown: it could quote the secret.
    let value: Value = serde_json::from_str(&text).map_err(|_| {
        EnvError::new(
            VAR,
            format!("secret {secret_id:?} is not {{\"username\": ..., \"password\": ...}}"),
        )
    })?;
    Ok(Credentials {
        username: value.username,
        password: Secret::new(value.password),
    })
}
