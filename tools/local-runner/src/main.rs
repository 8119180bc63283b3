//! `local-runner [-- COMMAND [ARGS...]]`
//!
//! Starts moto and tansu (unless `DYNAMODB_ENDPOINT` / `KAFKA_BROKERS` name
//! running servers), creates the table and the four topics, and runs the
//! four functions as AWS wires them: the HTTP API on 127.0.0.1, the
//! DynamoDB stream into the publisher and (a second reader, with its own
//! checkpoint) into the indexer, the commands topic into the async
//! commands function. Once everything is up it writes `.local/stack.env`.
//!
//! Without a command it runs until Ctrl-C (or SIGTERM). With one, it runs
//! COMMAND with the stack's variables set, then stops and exits with
//! COMMAND's status. Either way it stops everything it started.
//!
//! Each invocation's metrics record (CloudWatch EMF, as the functions print
//! it on stdout in AWS) is appended to `$EVIDENTSOURCE_METRICS_FILE` when
//! set (the tests check them against the EMF schema), dropped otherwise.

use std::{path::Path, process::ExitCode, sync::Arc, time::Duration};

use aws_config::BehaviorVersion;
use aws_lambda_events::event::{dynamodb::Event, streams::DynamoDbEventResponse};
use evidentsource_admin::{Admin, Created, recommended};
use evidentsource_async_commands::{
    BatchReport, Processor, ProcessorConfig, metrics as async_metrics,
};
use evidentsource_command_ingestion::{
    App,
    submit::{AsyncSubmit, SubmitConfig},
};
use evidentsource_kafka_config::{ConsumerProfile, KafkaContext, KafkaSettings};
use evidentsource_kafka_event_source::EventSource;
use evidentsource_local_runner::{
    Shutdown,
    api::{self, Gateway},
    banner,
    checkpoint::CheckpointFile,
    filter::Filters,
    invoke::{invoke, stream_outcome},
    kafka_failure::{FailureQueue, Origin},
    kafka_poller::KafkaSource,
    stack::{StackInfo, StackSettings, ensure_table, read_env_file, wait_until},
    stream_poller::{StreamSource, open_stream},
    template::{EventSources, StreamSettings},
};
use evidentsource_local_servers::LocalServers;
use evidentsource_storage::{Deadline, StorageEnv, Store, StoreConfig, dynamodb_client};
use evidentsource_stream_publisher::{BatchMetrics, Publisher, PublisherConfig};
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
    // Refused before anything starts.
    Filters::parse(&sources.publisher.filters)?;
    Filters::parse(&sources.indexer.filters)?;
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
    set_metrics_sink()?;
    lambda_http::tracing::init_default_subscriber_with_writer(std::io::stderr);
    let runtime = tokio::runtime::Runtime::new()?;
    let code = runtime.block_on(run(settings, sources, listener, &servers, &info, command));
    runtime.shutdown_timeout(Duration::from_secs(2));
    drop(servers);
    code
}

/// Where the functions' metrics records go (see the module's doc).
fn set_metrics_sink() -> Result<(), Failure> {
    let sink: Box<dyn std::io::Write + Send> = match std::env::var_os(METRICS_FILE_VAR) {
        Some(path) if !path.is_empty() => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("{METRICS_FILE_VAR}: {}: {e}", Path::new(&path).display()))?,
        ),
        _ => Box::new(std::io::sink()),
    };
    evidentsource_runtime::metrics::set_sink(sink);
    Ok(())
}

/// The file the metrics records are appended to.
const METRICS_FILE_VAR: &str = "EVIDENTSOURCE_METRICS_FILE";

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

    // The four functions, built as their main.rs builds them.
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
    let indexer = Arc::new(Store::new(
        dynamodb.clone(),
        StoreConfig::new(&storage.table_name),
    ));

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
    let open = |stream: &StreamSettings, checkpoint: &Path| {
        stream_source(
            streams.clone(),
            &stream_arn,
            &region,
            stream.clone(),
            CheckpointFile::new(checkpoint),
        )
    };
    let publisher_source = open(&sources.publisher, &settings.stream_checkpoint).await?;
    let indexer_source = open(&sources.indexer, &settings.indexer_checkpoint).await?;
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
    tasks.push(spawn_stream_source(
        "stream publisher",
        publisher_source,
        sources.publisher.clone(),
        shutdown.clone(),
        move |event, deadline| {
            let publisher = publisher.clone();
            async move {
                let started = std::time::Instant::now();
                let mut batch = BatchMetrics::default();
                let answer = publisher
                    .handle_measured(&event, deadline, &mut batch)
                    .await;
                batch
                    .for_invocation(answer.as_ref().ok(), started.elapsed())
                    .emit();
                answer.map_err(|e| e.to_string())
            }
        },
    ));
    tasks.push(spawn_stream_source(
        "indexer",
        indexer_source,
        sources.indexer.clone(),
        shutdown.clone(),
        move |event, deadline| {
            let indexer = indexer.clone();
            async move {
                let report =
                    evidentsource_indexer::handle(&indexer, &event, Deadline::at(deadline)).await;
                evidentsource_indexer::metrics::for_invocation(report.as_ref().ok()).emit();
                report.map(|r| r.response).map_err(|e| e.to_string())
            }
        },
    ));
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
                            let (processor, event) = (&processor, &event);
                            let report = invoke(async_timeout, |deadline| async move {
                                let mut report = BatchReport::default();
                                let result = processor
                                    .handle_measured(event, deadline, &mut report)
                                    .await;
                                async_metrics::for_invocation(&report, result.is_err()).emit();
                                result.map(|()| report)
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
            banner::print(info, servers, &settings);
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

/// A stream event source reading the table's stream from its own
/// checkpoint, batching and filtering as `stream` says.
async fn stream_source(
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    region: &str,
    stream: StreamSettings,
    checkpoint: CheckpointFile,
) -> Result<StreamSource, Failure> {
    let (reader, checkpoint) = open_stream(
        client,
        stream_arn,
        region,
        stream.starting_position,
        checkpoint,
    )
    .await?;
    Ok(StreamSource {
        reader,
        settings: stream.batch,
        window: stream.window,
        filters: Filters::parse(&stream.filters)?,
        checkpoint: Some(checkpoint),
    })
}

/// Runs a stream source until `shutdown`, invoking `function` (an event
/// and its deadline) as Lambda invokes it under `stream`'s mapping.
fn spawn_stream_source<F, Fut>(
    name: &'static str,
    source: StreamSource,
    stream: StreamSettings,
    shutdown: Shutdown,
    function: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(Event, tokio::time::Instant) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<DynamoDbEventResponse, String>> + Send + 'static,
{
    let function = Arc::new(function);
    tokio::spawn(async move {
        let invocation = move |event: Event| {
            let (function, stream) = (function.clone(), stream.clone());
            async move {
                let answer = invoke(stream.timeout, |deadline| function(event, deadline)).await;
                stream_outcome(name, answer, stream.partial_batch_responses)
            }
        };
        let totals = source.run(invocation, shutdown).await;
        tracing::info!(function = name, ?totals, "stream event source stopped");
    })
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
