//! A Kafka broker that requires TLS, and SASL if asked: tansu behind the
//! front of kafka_front.rs, with a CA made at start (tls.rs) and a user
//! with a random password.
//!
//! Each value owns its own tansu (tansu advertises one listener, the
//! front's), so tests that need a differently configured broker start their
//! own; [`SecureKafka::shared_sasl_ssl`] and [`SecureKafka::shared_ssl`] are
//! started at most once per test process.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock, mpsc},
    thread::JoinHandle,
    time::Duration,
};

use rdkafka::ClientConfig;

use crate::{
    Error, ServerProcess, Venv,
    kafka_front::{FrontConfig, Users, serve},
    process,
    tls::TestCa,
};

/// How the broker is secured.
#[derive(Debug, Clone)]
pub struct SecureKafkaOptions {
    /// SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) required after TLS.
    pub sasl: bool,
    /// The names the broker's certificate is for.
    pub cert_names: Vec<String>,
    /// The host clients connect to (bootstrap and advertised).
    pub host: String,
}

impl Default for SecureKafkaOptions {
    fn default() -> Self {
        SecureKafkaOptions {
            sasl: true,
            cert_names: vec!["localhost".into(), "127.0.0.1".into()],
            host: "127.0.0.1".into(),
        }
    }
}

/// tansu behind a TLS (and SASL) front on 127.0.0.1.
pub struct SecureKafka {
    /// `HOST:PORT` of the front, for `KAFKA_BROKERS`.
    pub brokers: String,
    /// The CA that signed the broker's certificate, PEM.
    pub ca_pem: String,
    /// The same CA in a file, for `KAFKA_SSL_CA_LOCATION`.
    pub ca_path: PathBuf,
    /// A user that exists (when SASL is on).
    pub username: String,
    pub password: String,
    pub sasl: bool,
    users: Users,
    front: Option<Front>,
    tansu: ServerProcess,
}

impl std::fmt::Debug for SecureKafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureKafka")
            .field("brokers", &self.brokers)
            .field("sasl", &self.sasl)
            .finish_non_exhaustive()
    }
}

impl SecureKafka {
    pub fn start(options: SecureKafkaOptions) -> Result<Self, Error> {
        let front_err = |e: &dyn std::fmt::Display| Error::Front(e.to_string());
        let ca = TestCa::new("evidentsource test CA").map_err(|e| front_err(&e))?;
        let names: Vec<&str> = options.cert_names.iter().map(String::as_str).collect();
        let tls = ca.server_config(&names).map_err(|e| front_err(&e))?;
        let ca_path = ca.write_pem().map_err(|e| front_err(&e))?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(Error::NoPort)?;
        let front_port = listener.local_addr().map_err(Error::NoPort)?.port();
        let brokers = format!("{}:{front_port}", options.host);
        let tansu = process::start_tansu_advertising(
            &Venv::locate()?,
            None,
            Some(&format!("tcp://{brokers}")),
        )?;
        let username = "evidentsource".to_owned();
        let password = format!("pw-{:016x}", fastrand::u64(..));
        let users: Users = Arc::new(Mutex::new(vec![(username.clone(), password.clone())]));
        let config = FrontConfig {
            tls: Some(tls),
            users: options.sasl.then(|| users.clone()),
            upstream: SocketAddr::from(([127, 0, 0, 1], tansu.port())),
        };
        let front = Front::start(listener, config).map_err(|e| front_err(&e))?;
        Ok(SecureKafka {
            brokers,
            ca_pem: ca.pem(),
            ca_path,
            username,
            password,
            sasl: options.sasl,
            users,
            front: Some(front),
            tansu,
        })
    }

    /// SASL_SSL with the default options, started once per test process.
    pub fn shared_sasl_ssl() -> &'static SecureKafka {
        static KAFKA: OnceLock<SecureKafka> = OnceLock::new();
        KAFKA.get_or_init(|| {
            Self::start(SecureKafkaOptions::default())
                .unwrap_or_else(|e| panic!("SASL_SSL broker: {e}"))
        })
    }

    /// SSL only, started once per test process.
    pub fn shared_ssl() -> &'static SecureKafka {
        static KAFKA: OnceLock<SecureKafka> = OnceLock::new();
        KAFKA.get_or_init(|| {
            Self::start(SecureKafkaOptions {
                sasl: false,
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("SSL broker: {e}"))
        })
    }

    /// Adds (or replaces) a user.
    pub fn add_user(&self, name: &str, password: &str) {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        users.retain(|(u, _)| u != name);
        users.push((name.to_owned(), password.to_owned()));
    }

    /// rdkafka settings for test setup and reading back (SCRAM-SHA-512 as
    /// the default user), independent of the suite's config crate.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = crate::kafka_config(&self.brokers);
        c.set("ssl.ca.location", self.ca_path.display().to_string());
        if self.sasl {
            c.set("security.protocol", "sasl_ssl")
                .set("sasl.mechanism", "SCRAM-SHA-512")
                .set("sasl.username", &self.username)
                .set("sasl.password", &self.password);
        } else {
            c.set("security.protocol", "ssl");
        }
        c
    }

    /// The suite's `KAFKA_*` variables for this broker (SASL_SSL as the
    /// default user with `password`, the mechanism given; SSL without
    /// SASL), as a lookup for `KafkaSettings::from_lookup`.
    pub fn kafka_vars(&self, mechanism: &str, password: &str) -> impl Fn(&str) -> Option<String> {
        let mut vars = vec![
            ("KAFKA_BROKERS", self.brokers.clone()),
            ("KAFKA_SSL_CA_LOCATION", self.ca_path.display().to_string()),
        ];
        if self.sasl {
            vars.extend([
                ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL".to_owned()),
                ("KAFKA_SASL_MECHANISM", mechanism.to_owned()),
                ("KAFKA_SASL_USERNAME", self.username.clone()),
                ("KAFKA_SASL_PASSWORD", password.to_owned()),
            ]);
        } else {
            vars.push(("KAFKA_SECURITY_PROTOCOL", "SSL".to_owned()));
        }
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    }

    /// Creates a topic through the front.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<(), String> {
        crate::create_topic_with(&self.client_config(), name, partitions).await
    }

    /// The tansu behind the front.
    pub fn tansu(&self) -> &ServerProcess {
        &self.tansu
    }

    pub fn stop(&mut self) {
        self.front.take();
        self.tansu.stop();
    }
}

impl Drop for SecureKafka {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The front's thread and runtime, stopped on drop.
struct Front {
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Front {
    fn start(listener: std::net::TcpListener, config: FrontConfig) -> std::io::Result<Front> {
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kafka-front")
            .enable_all()
            .build()?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("kafka-front".into())
            .spawn(move || {
                runtime.spawn(serve(listener, config));
                // Until the owner drops its sender.
                let _ = stopped.recv();
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(Front {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
