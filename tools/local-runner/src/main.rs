//! `local-runner [-- COMMAND [ARGS...]]`
//!
//! Starts moto and tansu (unless `DYNAMODB_ENDPOINT` / `KAFKA_BROKERS` name
//! running servers), creates the table and the four topics, and runs the
//! three functions as AWS wires them: the HTTP API on 127.0.0.1, the
//! DynamoDB stream into the publisher, the commands topic into the async
//! commands function. Once everything is up it writes `.local/stack.env`.
//!
//! Without a command it runs until Ctrl-C (or SIGTERM). With one, it runs
//! COMMAND with the stack's variables set, then stops and exits with
//! COMMAND's status. Either way it stops everything it started.

use std::{path::Path, process::ExitCode, sync::Arc, time::Duration};

use aws_config::BehaviorVersion;
use evidentsource_admin::{Admin, Created, recommended};
use evidentsource_async_commands::{Processor, ProcessorConfig};
use evidentsource_command_ingestion::{
    App,
    submit::{AsyncSubmit, SubmitConfig},
};
use evidentsource_kafka_config::{ConsumerProfile, KafkaContext, KafkaSettings};
use evidentsource_kafka_event_source::EventSource;
use evidentsource_local_runner::{
    Shutdown,
    api::{self, Gateway},
    batcher::Outcome,
    checkpoint::CheckpointFile,
    filter::Filters,
    kafka_failure::{FailureQueue, Origin},
    kafka_poller::KafkaSource,
    stack::{StackInfo, StackSettings, ensure_table, read_env_file, wait_until},
    stream_poller::{StreamSource, open_stream},
    template::EventSources,
};
use evidentsource_local_servers::LocalServers;
use evidentsource_storage::{Deadline, StorageEnv, Store, StoreConfig, dynamodb_client};
use evidentsource_stream_publisher::{Publisher, PublisherConfig};
use rdkafka::consumer::{Consumer, StreamConsumer};
use tokio::signal::unix::{SignalKind, signal};

/// How long the loops get to finish their invocation when stopping.
const STOP_GRACE: Duration = Duration::from_secs(10);

type Failure = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args.split_first() {
        None => None,
        Some((dashes, rest)) if dashes == "--" && !rest.is_empty() => Some(rest.to_vec()),
        _ => {
            eprintln!("usage: local-runner [-- COMMAND [ARGS...]]");
            return ExitCode::from(2);
        }
    };
    match start(command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("local-runner: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Everything before the async runtime: settings, the API's port, the
/// servers, and the environment the functions read.
fn start(command: Option<Vec<String>>) -> Result<ExitCode, Failure> {
    let settings = StackSettings::from_env()?;
    let sources = EventSources::from_template(&settings.template, &settings.template_parameters)?;
    let filters = Filters::parse(&sources.stream_filters)?;
    // Bound first: the API's address is part of BASE_URI.
    let listener = std::net::TcpListener::bind(("127.0.0.1", settings.api_port.unwrap_or(0)))
        .map_err(|e| format!("API port: {e}"))?;
    listener.set_nonblocking(true)?;
    let api_url = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
    let servers = LocalServers::use_or_start(
        settings.dynamodb_endpoint.clone(),
        settings.dynamodb_port,
        settings.kafka_brokers.clone(),
        settings.kafka_port,
    )?;
    let info = StackInfo {
        api_url,
        kafka_brokers: servers.kafka_brokers.clone(),
        dynamodb_endpoint: servers.dynamodb_endpoint.clone(),
        table_name: settings.table_name.clone(),
        topics: settings.topics.clone(),
        async_failure_queue_url: None,
    };
    set_function_env(&info, command.is_some());
    lambda_http::tracing::init_default_subscriber_with_writer(std::io::stderr);
    let runtime = tokio::runtime::Runtime::new()?;
    let code = runtime.block_on(run(
        settings, sources, filters, listener, &servers, &info, command,
    ));
    runtime.shutdown_timeout(Duration::from_secs(2));
    drop(servers);
    code
}

/// The variables the functions read in AWS, pointed at the local stack.
fn set_function_env(info: &StackInfo, quiet: bool) {
    let mut vars: Vec<(&str, String)> = info
        .vars()
        .into_iter()
        .filter(|(k, _)| *k != "API_URL")
        .collect();
    let keep = |var: &str, default: &str| std::env::var(var).unwrap_or_else(|_| default.to_owned());
    vars.push(("BASE_URI", keep("BASE_URI", &info.api_url)));
    vars.push(("AWS_REGION", keep("AWS_REGION", "us-east-1")));
    // moto takes any credentials; fixed ones keep real keys from being
    // used (and signed with) against the local servers.
    vars.push(("AWS_ACCESS_KEY_ID", "local".to_owned()));
    vars.push(("AWS_SECRET_ACCESS_KEY", "local".to_owned()));
    if quiet {
        vars.push(("RUST_LOG", keep("RUST_LOG", "warn")));
    }
    // SAFETY: called before the async runtime and any Kafka or AWS client
    // exist; the only other thread (the server spawner) does not read the
    // environment outside std's own lock.
    unsafe {
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::remove_var("AWS_PROFILE");
        for (k, v) in vars {
            std::env::set_var(k, v);
        }
    }
}

async fn run(
    settings: StackSettings,
    sources: EventSources,
    filters: Filters,
    listener: std::net::TcpListener,
    servers: &LocalServers,
    info: &StackInfo,
    command: Option<Vec<String>>,
) -> Result<ExitCode, Failure> {
    let aws = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let storage = StorageEnv::from_env()?;
    let dynamodb = dynamodb_client(&storage).await;
    let stream_arn = ensure_table(&dynamodb, &storage.table_name).await?;

    let mut kafka = KafkaSettings::from_env()?;
    let kafka_context = kafka.resolve(&aws).await?;
    let admin = Admin::new(&kafka, kafka_context.clone())?;
    for created in admin
        .create(&recommended(&settings.topics, settings.partitions, 1))
        .await?
    {
        if let Created::Created(topic) = created {
            tracing::info!(topic, "topic created");
        }
    }

    // The three functions, built as their main.rs builds them.
    let mut app = App::new(Store::new(
        dynamodb.clone(),
        StoreConfig::new(&storage.table_name),
    ));
    if let Some(mut config) = SubmitConfig::from_env()? {
        let context = config.kafka.resolve(&aws).await?;
        app = app.with_async_submit(AsyncSubmit::new(config, context)?);
    }
    let app = Arc::new(app);
    let mut config = PublisherConfig::from_env()?;
    let context = config.kafka.resolve(&aws).await?;
    let publisher = Arc::new(Publisher::new(config, context)?);
    let mut config = ProcessorConfig::from_env()?;
    let context = config.kafka.resolve(&aws).await?;
    let processor = Arc::new(Processor::new(
        config,
        Store::new(dynamodb.clone(), StoreConfig::new(&storage.table_name)),
        context,
    )?);

    // The event sources.
    let region = aws.region().map(|r| r.to_string()).unwrap_or_default();
    let on_failure = match sources
        .kafka
        .provisioned
        .as_ref()
        .and_then(|p| p.on_failure.as_deref())
    {
        None => None,
        Some(queue) => Some(
            failure_queue(&aws, info, queue, &region)
                .await
                .map_err(|e| format!("{queue}: {e}"))?,
        ),
    };
    let info = &StackInfo {
        async_failure_queue_url: on_failure.as_ref().map(|q| q.url.clone()),
        ..info.clone()
    };
    let streams = aws_sdk_dynamodbstreams::Client::from_conf(
        aws_sdk_dynamodbstreams::config::Builder::from(&aws)
            .endpoint_url(&info.dynamodb_endpoint)
            .build(),
    );
    let (reader, checkpoint) = open_stream(
        streams,
        &stream_arn,
        &region,
        sources.stream_starting_position,
        CheckpointFile::new(&settings.stream_checkpoint),
    )
    .await?;
    let consumer: Arc<StreamConsumer<KafkaContext>> = Arc::new(kafka.consumer(
        ConsumerProfile::EventSource {
            group: &settings.consumer_group,
        },
        &kafka_context,
    )?);
    consumer.subscribe(&[settings.topics.async_commands.as_str()])?;

    let (stop, shutdown) = Shutdown::new();
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(api::serve(
        tokio::net::TcpListener::from_std(listener)?,
        app,
        Gateway {
            function_timeout: sources.ingestion_timeout,
            integration_timeout: sources.integration_timeout,
        },
        shutdown.receiver(),
    )));
    let stream_source = StreamSource {
        reader,
        settings: sources.stream,
        window: sources.stream_window,
        filters,
        checkpoint: Some(checkpoint),
    };
    let publisher_timeout = sources.publisher_timeout;
    tasks.push(tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            let totals = stream_source
                .run(
                    move |event| {
                        let publisher = publisher.clone();
                        async move {
                            match invoke(publisher_timeout, |deadline| {
                                publisher.handle(&event, deadline)
                            })
                            .await
                            {
                                Ok(response) => Outcome::Returned(response),
                                Err(e) => {
                                    tracing::warn!(error = %e, "stream publisher failed");
                                    Outcome::Failed
                                }
                            }
                        }
                    },
                    shutdown,
                )
                .await;
            tracing::info!(?totals, "stream event source stopped");
        }
    }));
    let kafka_source = KafkaSource {
        consumer: consumer.clone(),
        settings: sources.kafka,
        source: EventSource::SelfManaged,
        bootstrap_servers: info.kafka_brokers.clone(),
        on_failure,
    };
    let async_timeout = sources.async_timeout;
    tasks.push(tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            let totals = kafka_source
                .run(
                    move |event| {
                        let processor = processor.clone();
                        async move {
                            let report = invoke(async_timeout, |deadline| {
                                processor.handle(&event, deadline)
                            })
                            .await?;
                            tracing::info!(?report, "batch handled");
                            Ok::<_, String>(())
                        }
                    },
                    shutdown,
                )
                .await;
            tracing::info!(?totals, "Kafka event source stopped");
        }
    }));

    // Up once the commands consumer has its partitions.
    let joined = wait_until(Duration::from_secs(60), || {
        consumer.assignment().is_ok_and(|a| a.count() > 0)
    })
    .await;
    if !joined {
        return Err("the async commands consumer got no partitions within 60 s".into());
    }
    info.write(&settings.env_file)
        .map_err(|e| format!("{}: {e}", settings.env_file.display()))?;

    let code = match command {
        None => {
            print_banner(info, servers, &settings);
            wait_for_signal().await;
            eprintln!("local-runner: stopping");
            Ok(ExitCode::SUCCESS)
        }
        Some(command) => run_command(&command, info).await,
    };
    let _ = stop.send(true);
    let _ = tokio::time::timeout(STOP_GRACE, futures_join(tasks)).await;
    // Gone with the stack, unless another runner has written it since.
    if read_env_file(&settings.env_file).is_ok_and(|vars| {
        vars.iter()
            .any(|(k, v)| k == "API_URL" && *v == info.api_url)
    }) {
        let _ = std::fs::remove_file(&settings.env_file);
    }
    code
}

/// The async commands' on-failure queue in moto, named after the
/// template's resource.
async fn failure_queue(
    aws: &aws_config::SdkConfig,
    info: &StackInfo,
    queue: &str,
    region: &str,
) -> Result<FailureQueue, String> {
    let client = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(aws)
            .endpoint_url(&info.dynamodb_endpoint)
            .build(),
    );
    let url = client
        .create_queue()
        .queue_name(queue)
        .send()
        .await
        .map_err(|e| format!("CreateQueue: {}", e.into_service_error()))?
        .queue_url
        .ok_or("CreateQueue returned no URL")?;
    Ok(FailureQueue {
        client,
        url,
        origin: Origin {
            function_arn: format!(
                "arn:aws:lambda:{region}:000000000000:function:AsyncCommandsFunction"
            ),
            event_source_arn: None,
            bootstrap_servers: info.kafka_brokers.clone(),
        },
    })
}

/// Runs COMMAND with the stack's variables; its exit status, or 130 on
/// Ctrl-C.
async fn run_command(command: &[String], info: &StackInfo) -> Result<ExitCode, Failure> {
    let (program, args) = command.split_first().ok_or("no command")?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .envs(info.vars())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    tokio::select! {
        status = child.wait() => {
            let status = status?;
            Ok(ExitCode::from(status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1)))
        }
        _ = wait_for_signal() => {
            eprintln!("local-runner: stopping {program}");
            Ok(ExitCode::from(130))
        }
    }
}

/// One invocation as Lambda runs it: the handler's deadline is the
/// function's timeout less the margin its `main.rs` keeps, and it is
/// stopped at the timeout.
async fn invoke<F, Fut, T, E>(timeout: Duration, handler: F) -> Result<T, String>
where
    F: FnOnce(tokio::time::Instant) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let deadline = Deadline::for_timeout(timeout).instant();
    match tokio::time::timeout(timeout, handler(deadline)).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("timed out after {timeout:?}")),
    }
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}

async fn wait_for_signal() {
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

fn print_banner(info: &StackInfo, servers: &LocalServers, settings: &StackSettings) {
    let started = |name: &str| {
        servers
            .processes()
            .iter()
            .find(|p| p.name() == name)
            .map(|p| format!("{name}, log {}", p.log_path().display()))
            .unwrap_or_else(|| "yours".to_owned())
    };
    let t = &info.topics;
    // Relative to where the user is, when it is below.
    let env_file = std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            settings
                .env_file
                .strip_prefix(cwd)
                .ok()
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| settings.env_file.clone());
    let env = env_file.display();
    println!(
        r#"
EvidentSource is running locally (Ctrl-C stops everything).

  HTTP API       {api}
  DynamoDB       {ddb}   ({moto}; table {table})
  Kafka          {kafka}   ({tansu})
  Topics         {events} (database events)
                 {commands} -> {responses} (async commands)
                 {proposals}
  Stack          {env}

In another terminal:

  set -a; . {env}; set +a
  curl -s -X POST "$API_URL/databases" -H 'content-type: application/json' -d '{{"name": "accounts"}}'
  curl -s -X POST "$API_URL/databases/accounts/transactions" -H 'content-type: application/json' -d '{{
    "transaction_id": "open-42",
    "events": [{{"specversion": "1.0", "id": "e-1", "source": "https://example.com/bank/accounts",
                "type": "com.bank.account-opened", "subject": "account-42", "data": {{"owner": "Ada"}}}}],
    "conditions": [{{"selector": {{"subject_equals": "account-42"}}, "max": 0}}]}}'
  curl -s -X POST "$API_URL/databases/accounts/transactions?mode=async" -H 'content-type: application/json' -d '{{
    "events": [{{"specversion": "1.0", "id": "e-2", "source": "https://example.com/bank/accounts",
                "type": "com.bank.deposited", "subject": "account-42", "data": {{"amount": 10}}}}]}}'
  curl -s "$API_URL/databases/accounts"
  curl -s "$API_URL/databases/accounts/events?from=1&to=100"
  curl -s -X POST "$API_URL/databases/accounts/query" -H 'content-type: application/json' -d '{{"selector": {{"subject_equals": "account-42"}}}}'
  curl -s -X DELETE "$API_URL/databases/accounts"

Watch the database events as a consumer sees them:

  set -a; . {env}; set +a; cargo run -q -p evidentsource-database-events-consumer

Run the demo scenario against this stack:

  cargo run -q -p evidentsource-local-runner --bin demo
"#,
        api = info.api_url,
        ddb = info.dynamodb_endpoint,
        moto = started("moto"),
        table = info.table_name,
        kafka = info.kafka_brokers,
        tansu = started("tansu"),
        events = t.database_events,
        commands = t.async_commands,
        responses = t.async_responses,
        proposals = t.transaction_proposals,
    );
}
