//! Lambda entry point: read the config, build the clients once per cold
//! start, serve requests with the library's handler.

use std::{convert::Infallible, sync::Arc};

use evidentsource_command_ingestion::{
    App,
    submit::{AsyncSubmit, SubmitConfig},
};
use evidentsource_storage::{StorageEnv, Store, StoreConfig, dynamodb_client};
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let env = StorageEnv::from_env()?;
    let client = dynamodb_client(&env).await;
    let mut app = App::new(Store::new(client, StoreConfig::new(&env.table_name)));
    if let Some(mut config) = SubmitConfig::from_env()? {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let context = config.kafka.resolve(&aws).await?;
        app = app.with_async_submit(AsyncSubmit::new(config, context)?);
    }
    let app = Arc::new(app);
    lambda_http::run(service_fn(move |request: Request| {
        let app = app.clone();
        async move {
            let deadline = app.deadline_of(&request);
            let (response, metrics) = app.handle_measured(request, deadline).await;
            // One record per invocation (a request is one invocation).
            metrics.for_invocation().emit();
            Ok::<_, Infallible>(response)
        }
    }))
    .await
}
