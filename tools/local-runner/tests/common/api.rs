//! The HTTP API served in-process, as `make dev` serves it (the local API
//! Gateway in front of the real command-ingestion function), over a table
//! of its own in the shared moto: what the client tests talk to.

use std::{sync::Arc, time::Duration};

use evidentsource_command_ingestion::App;
use evidentsource_local_runner::api::{self, Gateway};
use evidentsource_local_servers::{dynamodb_client, shared, unique_name};
use evidentsource_storage::{Store, StoreConfig, table::create_table};
use tokio::{net::TcpListener, sync::watch};

/// The API on a free port; serves until the sender is dropped. Its
/// metric records are dropped (the runner tests check them, not these).
pub async fn serve_api() -> (String, watch::Sender<bool>) {
    evidentsource_runtime::metrics::set_sink(Box::new(std::io::sink()));
    let client = dynamodb_client(&shared().dynamodb_endpoint);
    let table = unique_name("client");
    create_table(&client, &table).await.unwrap();
    let app = Arc::new(App::new(Store::new(client, StoreConfig::new(table))));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = watch::channel(false);
    let gateway = Gateway {
        function_timeout: Duration::from_secs(15),
        integration_timeout: Duration::from_secs(20),
    };
    tokio::spawn(api::serve(listener, app, gateway, stopped));
    (url, stop)
}
