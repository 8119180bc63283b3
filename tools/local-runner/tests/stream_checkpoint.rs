//! The stream event source's checkpoint against moto: a restarted source
//! reads on where it stopped (nothing is published twice), and the
//! template's `StartingPosition` applies only to a stream never read.

mod common;

use std::{sync::Arc, time::Duration};

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use common::*;
use evidentsource_dynamodb_stream::StreamReader;
use evidentsource_local_runner::{
    Shutdown,
    batcher::{BatchSettings, Outcome},
    checkpoint::{CheckpointFile, StartingPosition},
    filter::Filters,
    stream_poller::{StreamCheckpoint, StreamSource, open_stream},
};
use evidentsource_local_servers::unique_name;

/// A stream source as the runner runs it (the template's filter, its
/// checkpoint in `file`), whose function records the `n` of each head
/// record; runs until `until` holds for what it saw.
async fn run_with_checkpoint(
    arn: &str,
    file: &CheckpointFile,
    starting: StartingPosition,
    until: impl Fn(&[u32]) -> bool,
) -> Vec<u32> {
    let (reader, checkpoint) =
        open_stream(streams_client(), arn, "us-east-1", starting, file.clone())
            .await
            .unwrap();
    run_until(reader, Some(checkpoint), until).await
}

async fn run_until(
    reader: StreamReader,
    checkpoint: Option<StreamCheckpoint>,
    until: impl Fn(&[u32]) -> bool,
) -> Vec<u32> {
    let source = StreamSource {
        reader,
        settings: BatchSettings {
            batch_size: 2,
            max_retries: 3,
            bisect_on_error: true,
        },
        window: Duration::ZERO,
        filters: Filters::parse(&[HEAD_ONLY]).unwrap(),
        checkpoint,
    };
    let seen: Seen = Arc::default();
    let (stop, shutdown) = Shutdown::new();
    let calls = seen.clone();
    let run = tokio::spawn(source.run(
        move |event| {
            calls.lock().unwrap().push(pk_n(&event));
            async { Outcome::Returned(DynamoDbEventResponse::default()) }
        },
        shutdown,
    ));
    let ns = || ns_per_call(&seen).concat();
    let limit = tokio::time::Instant::now() + Duration::from_secs(30);
    while !until(&ns()) {
        assert!(
            tokio::time::Instant::now() < limit,
            "only {:?} within 30 s",
            ns()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    run.await.unwrap();
    ns()
}

#[tokio::test]
async fn a_restarted_stream_source_reads_on_from_its_checkpoint() {
    let (client, table, arn) = new_table().await;
    let dir = std::env::temp_dir().join(unique_name("runner-checkpoint"));
    let file = CheckpointFile::new(dir.join("stream-checkpoint.json"));
    put(&client, &table, "db#a", "head", 1).await;
    put(&client, &table, "db#b", "head", 2).await;
    put(&client, &table, "db#b", "chunk#1", 100).await;
    put(&client, &table, "db#c", "head", 3).await;

    // Never read: from the template's TRIM_HORIZON, everything.
    let first = run_with_checkpoint(&arn, &file, StartingPosition::TrimHorizon, |ns| {
        ns.contains(&3)
    })
    .await;
    assert_eq!(first, [1, 2, 3]);
    let saved = file
        .load(&arn)
        .unwrap()
        .expect("a checkpoint for the stream");
    assert_eq!(saved.len(), 1, "moto's one shard: {saved:?}");

    // Restarted with the same checkpoint: only what came since, and the
    // starting position no longer applies.
    put(&client, &table, "db#d", "head", 4).await;
    put(&client, &table, "db#e", "head", 5).await;
    let second = run_with_checkpoint(&arn, &file, StartingPosition::TrimHorizon, |ns| {
        ns.contains(&5)
    })
    .await;
    assert_eq!(second, [4, 5], "nothing published again");

    // Once more with nothing new, then a new write: only that one.
    put(&client, &table, "db#f", "head", 6).await;
    let third =
        run_with_checkpoint(&arn, &file, StartingPosition::Latest, |ns| ns.contains(&6)).await;
    assert_eq!(third, [6]);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn without_a_checkpoint_latest_starts_at_the_streams_end() {
    let (client, table, arn) = new_table().await;
    put(&client, &table, "db#old", "head", 1).await;
    let dir = std::env::temp_dir().join(unique_name("runner-checkpoint"));
    let file = CheckpointFile::new(dir.join("stream-checkpoint.json"));
    // Another stream's checkpoint in the file does not count for this one.
    file.save(
        "arn:aws:dynamodb:us-east-1:000000000000:table/other/stream/x",
        &[("shardId-1".to_owned(), "1".to_owned())].into(),
    )
    .unwrap();
    let (reader, checkpoint) = open_stream(
        streams_client(),
        &arn,
        "us-east-1",
        StartingPosition::Latest,
        file.clone(),
    )
    .await
    .unwrap();
    put(&client, &table, "db#new", "head", 2).await;
    let seen = run_until(reader, Some(checkpoint), |ns| ns.contains(&2)).await;
    assert_eq!(
        seen,
        [2],
        "the record written before the source opened is skipped"
    );
    let _ = std::fs::remove_dir_all(dir);
}
