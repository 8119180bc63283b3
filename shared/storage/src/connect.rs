//! The storage settings every function reads from its environment, and the
//! DynamoDB client (and store) built from them once per cold start.

use std::time::Duration;

use aws_config::{BehaviorVersion, retry::RetryConfig, timeout::TimeoutConfig};
use evidentsource_runtime::EnvError;

use crate::{Store, StoreConfig};

/// `TABLE_NAME` (required) and `DYNAMODB_ENDPOINT` (optional: a local
/// DynamoDB such as moto; unset in AWS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageEnv {
    pub table_name: String,
    pub endpoint: Option<String>,
}

impl StorageEnv {
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let table_name = lookup("TABLE_NAME")
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| EnvError::new("TABLE_NAME", "is required"))?;
        let endpoint = lookup("DYNAMODB_ENDPOINT").filter(|v| !v.trim().is_empty());
        if let Some(e) = &endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(EnvError::new(
                "DYNAMODB_ENDPOINT",
                format!("{e:?} is not an http(s) URL"),
            ));
        }
        Ok(StorageEnv {
            table_name,
            endpoint,
        })
    }
}

/// A DynamoDB client from the default AWS configuration chain (region and
/// credentials of the function's role), with short timeouts: a Lambda
/// function would rather fail fast and be retried than hang.
pub async fn dynamodb_client(env: &StorageEnv) -> aws_sdk_dynamodb::Client {
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(5))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await;
    let mut config = aws_sdk_dynamodb::config::Builder::from(&shared);
    if let Some(endpoint) = &env.endpoint {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_dynamodb::Client::from_conf(config.build())
}

/// The store of a function that needs nothing but the table: its settings
/// from the environment, the default [`StoreConfig`]. Once per cold start.
pub async fn store_from_env() -> Result<Store, EnvError> {
    let env = StorageEnv::from_env()?;
    Ok(Store::new(
        dynamodb_client(&env).await,
        StoreConfig::new(&env.table_name),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<StorageEnv, EnvError> {
        StorageEnv::from_lookup(|k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn reads_and_validates() {
        assert_eq!(env(&[]).unwrap_err().var, "TABLE_NAME");
        assert_eq!(env(&[("TABLE_NAME", " ")]).unwrap_err().var, "TABLE_NAME");
        let ok = env(&[
            ("TABLE_NAME", "t"),
            ("DYNAMODB_ENDPOINT", "http://127.0.0.1:5000"),
        ])
        .unwrap();
        assert_eq!(ok.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        let bad = env(&[("TABLE_NAME", "t"), ("DYNAMODB_ENDPOINT", "127.0.0.1:5000")]);
        assert_eq!(bad.unwrap_err().var, "DYNAMODB_ENDPOINT");
    }
}
