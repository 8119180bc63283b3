use std::sync::Arc;

use crate::{
    EnvError, KafkaContext, KafkaSettings, MskIamTokenSource, SaslMechanism, load_ca_secret,
    load_sasl_secret,
};

impl KafkaSettings {
    /// Completes the settings at cold start, before any client is built:
    /// loads the SASL credentials and the CA from Secrets Manager when
    /// secrets are named, and for AWS_MSK_IAM signs a first token with the
    /// function's role. Returns the context every client of the function
    /// shares (see [`KafkaContext::for_settings`]).
    pub async fn resolve(&mut self, aws: &aws_config::SdkConfig) -> Result<KafkaContext, EnvError> {
        if self.sasl_secret_id.is_some() || self.ca_secret_id.is_some() {
            let client = aws_sdk_secretsmanager::Client::new(aws);
            if let Some(secret_id) = &self.sasl_secret_id {
                self.credentials = Some(load_sasl_secret(&client, secret_id).await?);
            }
            if let Some(secret_id) = &self.ca_secret_id {
                self.ca_pem = Some(load_ca_secret(&client, secret_id).await?);
            }
        }
        let msk_iam = match self.mechanism {
            Some(SaslMechanism::AwsMskIam) => {
                let region = self.region.clone().unwrap_or_default();
                let credentials = aws.credentials_provider().ok_or_else(|| {
                    EnvError::new("AWS_REGION", "no AWS credentials to sign MSK IAM tokens")
                })?;
                let source = MskIamTokenSource::new(&region, credentials);
                source
                    .prefetch()
                    .await
                    .map_err(|e| EnvError::new("KAFKA_SASL_MECHANISM", e))?;
                Some(Arc::new(source))
            }
            _ => None,
        };
        Ok(KafkaContext::for_settings(self, msk_iam))
    }
}
