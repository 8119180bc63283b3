use std::sync::Arc;

use crate::{
    KafkaConfigError, KafkaContext, KafkaSettings, MskIamTokenSource, SaslMechanism,
    load_sasl_secret,
};

impl KafkaSettings {
    /// Completes the settings at cold start, before any client is built:
    /// loads the SASL credentials from Secrets Manager when a secret is
    /// named, and for AWS_MSK_IAM signs a first token with the function's
    /// role. Returns the context every client of the function shares.
    pub async fn resolve(
        mut self,
        aws: &aws_config::SdkConfig,
    ) -> Result<(KafkaSettings, KafkaContext), KafkaConfigError> {
        if let Some(secret_id) = self.sasl_secret_id.clone() {
            let client = aws_sdk_secretsmanager::Client::new(aws);
            self.credentials = Some(load_sasl_secret(&client, &secret_id).await?);
        }
        let context = match self.mechanism {
            Some(SaslMechanism::AwsMskIam) => {
                let region = self.region.clone().unwrap_or_default();
                let credentials = aws.credentials_provider().ok_or_else(|| {
                    KafkaConfigError::new("AWS_REGION", "no AWS credentials to sign MSK IAM tokens")
                })?;
                let source = MskIamTokenSource::new(&region, credentials);
                source
                    .prefetch()
                    .await
                    .map_err(|e| KafkaConfigError::new("KAFKA_SASL_MECHANISM", e))?;
                KafkaContext::new(Some(Arc::new(source)))
            }
            _ => KafkaContext::default(),
        };
        Ok((self, context))
    }
}
