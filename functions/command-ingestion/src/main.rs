//! Lambda entry point: read the config, build the clients once per cold
//! start, serve requests with the library's handler.

use std::{convert::Infallible, sync::Arc};

use evidentsource_command_ingestion::App;
use evidentsource_storage::{StorageEnv, Store, StoreConfig, dynamodb_client};
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let env = StorageEnv::from_env()?;
    let client = dynamodb_client(&env).await;
    let app = Arc::new(App::new(Store::new(
        client,
        StoreConfig::new(&env.table_name),
    )));
    lambda_http::run(service_fn(move |request: Request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.handle(request).await) }
    }))
    .await
}
