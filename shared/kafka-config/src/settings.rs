use std::path::PathBuf;

use rdkafka::ClientConfig;

use evidentsource_runtime::EnvError;

use crate::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslSsl,
    /// SASL without TLS: for local brokers only.
    SaslPlaintext,
}

impl SecurityProtocol {
    pub fn is_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslSsl | SecurityProtocol::SaslPlaintext
        )
    }

    pub fn is_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    fn librdkafka(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslSsl => "sasl_ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
    /// SASL OAUTHBEARER with a token signed by the IAM role.
    AwsMskIam,
}

impl SaslMechanism {
    fn librdkafka(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::AwsMskIam => "OAUTHBEARER",
        }
    }
}

/// The producers' batch compression (`KAFKA_COMPRESSION_TYPE`).
///
/// The default is gzip, the one codec every mainstream client decodes with
/// a plain install: kafka-python and kafkajs decode only gzip without extra
/// packages (lz4, snappy and zstd need add-ons there). On the suite's
/// messages (a small protobuf body and ~350 bytes of `ce_` headers that
/// repeat from message to message) gzip sends about an eighth of the bytes
/// of none at the same publisher throughput or better (docs/PERFORMANCE.md,
/// "Compression"). An operator whose consumers all decode another codec can
/// choose it; `none` turns compression off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    None,
    #[default]
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The name in `KAFKA_COMPRESSION_TYPE` and librdkafka's
    /// `compression.type`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(value))
    }
}

/// SASL username and password (PLAIN, SCRAM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

/// Everything needed to connect to Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    pub brokers: Vec<String>,
    pub protocol: SecurityProtocol,
    pub mechanism: Option<SaslMechanism>,
    /// From `KAFKA_SASL_USERNAME`/`KAFKA_SASL_PASSWORD`, or filled in from
    /// [`KafkaSettings::sasl_secret_id`] by [`crate::load_sasl_secret`].
    pub credentials: Option<Credentials>,
    /// `KAFKA_SASL_SECRET_ARN`: a Secrets Manager secret with the credentials.
    pub sasl_secret_id: Option<String>,
    /// `KAFKA_SSL_CA_LOCATION`: a CA bundle; the system's trust store otherwise.
    pub ca_location: Option<PathBuf>,
    /// `KAFKA_SSL_CA_SECRET_ARN`: a Secrets Manager secret with the CA
    /// (`{"certificate": PEM}`), instead of `ca_location`.
    pub ca_secret_id: Option<String>,
    /// The CA (PEM) loaded from `ca_secret_id` by [`KafkaSettings::resolve`].
    pub ca_pem: Option<String>,
    /// `AWS_REGION`, for signing MSK IAM tokens.
    pub region: Option<String>,
    pub client_id: String,
    /// `KAFKA_COMPRESSION_TYPE`, for producers.
    pub compression: Compression,
}

impl KafkaSettings {
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads and checks the settings through `lookup` (the environment, or
    /// a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let brokers: Vec<String> = get("KAFKA_BROKERS")
            .ok_or_else(|| {
                EnvError::new("KAFKA_BROKERS", "is required (comma-separated host:port)")
            })?
            .split(',')
            .map(|b| b.trim().to_owned())
            .filter(|b| !b.is_empty())
            .collect();
        if brokers.is_empty() {
            return Err(EnvError::new("KAFKA_BROKERS", "lists no broker"));
        }
        for b in &brokers {
            let port = b
                .rsplit_once(':')
                .map(|(host, port)| (host, port.parse::<u16>()));
            if !matches!(port, Some((host, Ok(p))) if !host.is_empty() && p > 0) {
                return Err(EnvError::new(
                    "KAFKA_BROKERS",
                    format!("{b:?} is not host:port"),
                ));
            }
        }

        let protocol = match get("KAFKA_SECURITY_PROTOCOL")
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("PLAINTEXT") => SecurityProtocol::Plaintext,
            Some("SSL") => SecurityProtocol::Ssl,
            Some("SASL_SSL") => SecurityProtocol::SaslSsl,
            Some("SASL_PLAINTEXT") => SecurityProtocol::SaslPlaintext,
            Some(other) => {
                return Err(EnvError::new(
                    "KAFKA_SECURITY_PROTOCOL",
                    format!(
                        "{other:?} is not one of PLAINTEXT, SSL, SASL_SSL (or SASL_PLAINTEXT for local brokers)"
                    ),
                ));
            }
        };
        let mechanism = match get("KAFKA_SASL_MECHANISM")
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None => None,
            Some("PLAIN") => Some(SaslMechanism::Plain),
            Some("SCRAM-SHA-256") => Some(SaslMechanism::ScramSha256),
            Some("SCRAM-SHA-512") => Some(SaslMechanism::ScramSha512),
            Some("AWS_MSK_IAM") => Some(SaslMechanism::AwsMskIam),
            Some(other) => {
                return Err(EnvError::new(
                    "KAFKA_SASL_MECHANISM",
                    format!(
                        "{other:?} is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, AWS_MSK_IAM"
                    ),
                ));
            }
        };
        let username = get("KAFKA_SASL_USERNAME");
        let password = lookup("KAFKA_SASL_PASSWORD").filter(|p| !p.is_empty());
        let sasl_secret_id = get("KAFKA_SASL_SECRET_ARN");
        let region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION"));

        match (protocol.is_sasl(), mechanism) {
            (true, None) => {
                return Err(EnvError::new(
                    "KAFKA_SASL_MECHANISM",
                    "is required with a SASL security protocol",
                ));
            }
            (false, Some(_)) => {
                return Err(EnvError::new(
                    "KAFKA_SECURITY_PROTOCOL",
                    "must be SASL_SSL when KAFKA_SASL_MECHANISM is set",
                ));
            }
            _ => {}
        }

        // The first credential variable that is set, to name in an error.
        let credential_var = [
            ("KAFKA_SASL_USERNAME", username.is_some()),
            ("KAFKA_SASL_PASSWORD", password.is_some()),
            ("KAFKA_SASL_SECRET_ARN", sasl_secret_id.is_some()),
        ]
        .into_iter()
        .find_map(|(var, set)| set.then_some(var));
        let credentials = match mechanism {
            None => {
                if let Some(var) = credential_var {
                    return Err(EnvError::new(var, "is only used with a SASL mechanism"));
                }
                None
            }
            Some(SaslMechanism::AwsMskIam) => {
                if protocol != SecurityProtocol::SaslSsl {
                    return Err(EnvError::new(
                        "KAFKA_SECURITY_PROTOCOL",
                        "must be SASL_SSL with AWS_MSK_IAM",
                    ));
                }
                if let Some(var) = credential_var {
                    return Err(EnvError::new(
                        var,
                        "is not used with AWS_MSK_IAM (the IAM role signs the token)",
                    ));
                }
                if region.is_none() {
                    return Err(EnvError::new(
                        "AWS_REGION",
                        "is required to sign AWS_MSK_IAM tokens",
                    ));
                }
                None
            }
            Some(_) => match (username, password, &sasl_secret_id) {
                (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                    return Err(EnvError::new(
                        "KAFKA_SASL_SECRET_ARN",
                        "set either the secret or KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD, not both",
                    ));
                }
                (None, None, Some(_)) => None,
                (Some(username), Some(password), None) => Some(Credentials {
                    username,
                    password: Secret::new(password),
                }),
                (None, _, None) => {
                    return Err(EnvError::new(
                        "KAFKA_SASL_USERNAME",
                        "is required for PLAIN and SCRAM (or set KAFKA_SASL_SECRET_ARN)",
                    ));
                }
                (Some(_), None, None) => {
                    return Err(EnvError::new(
                        "KAFKA_SASL_PASSWORD",
                        "is required with KAFKA_SASL_USERNAME",
                    ));
                }
            },
        };

        let ca_location = get("KAFKA_SSL_CA_LOCATION").map(PathBuf::from);
        if let Some(path) = &ca_location {
            if !protocol.is_tls() {
                return Err(EnvError::new(
                    "KAFKA_SSL_CA_LOCATION",
                    "is only used with SSL or SASL_SSL",
                ));
            }
            if !path.is_file() {
                return Err(EnvError::new(
                    "KAFKA_SSL_CA_LOCATION",
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }

        let ca_secret_id = get("KAFKA_SSL_CA_SECRET_ARN");
        if ca_secret_id.is_some() {
            if !protocol.is_tls() {
                return Err(EnvError::new(
                    "KAFKA_SSL_CA_SECRET_ARN",
                    "is only used with SSL or SASL_SSL",
                ));
            }
            if ca_location.is_some() {
                return Err(EnvError::new(
                    "KAFKA_SSL_CA_SECRET_ARN",
                    "set either it or KAFKA_SSL_CA_LOCATION, not both",
                ));
            }
        }

        let compression = match get("KAFKA_COMPRESSION_TYPE") {
            None => Compression::default(),
            Some(value) => Compression::parse(&value).ok_or_else(|| {
                EnvError::new(
                    "KAFKA_COMPRESSION_TYPE",
                    format!("{value:?} is not one of none, gzip, snappy, lz4, zstd"),
                )
            })?,
        };

        Ok(KafkaSettings {
            brokers,
            protocol,
            mechanism,
            credentials,
            sasl_secret_id,
            ca_location,
            ca_secret_id,
            ca_pem: None,
            region,
            client_id: get("KAFKA_CLIENT_ID").unwrap_or_else(|| "evidentsource".to_owned()),
            compression,
        })
    }

    /// The librdkafka properties for any client (producer, consumer, admin).
    ///
    /// With a secret still to load (see [`KafkaSettings::resolve`]), its
    /// part is missing (the SASL username and password, or the CA, which
    /// is then the system's): resolve first.
    ///
    /// Hostname verification is librdkafka's default
    /// (`ssl.endpoint.identification.algorithm=https`) and is not turned off.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.brokers.join(","))
            .set("client.id", &self.client_id)
            .set("security.protocol", self.protocol.librdkafka());
        if self.protocol.is_tls() {
            // "probe" finds the system's CA bundle wherever the distribution
            // keeps it (the OpenSSL linked in may have a different default).
            // A CA from a secret is the only one trusted, as with a file.
            match (&self.ca_pem, &self.ca_location) {
                (Some(pem), _) => c.set("ssl.ca.pem", pem),
                (None, Some(path)) => c.set("ssl.ca.location", path.display().to_string()),
                (None, None) => c.set("ssl.ca.location", "probe"),
            };
        }
        if let Some(m) = self.mechanism {
            c.set("sasl.mechanism", m.librdkafka());
        }
        if let Some(creds) = &self.credentials {
            c.set("sasl.username", &creds.username)
                .set("sasl.password", creds.password.expose());
        }
        // ClientConfig's own Debug output would show the password.
        c.set_log_level(rdkafka::config::RDKafkaLogLevel::Warning);
        c
    }

    /// [`KafkaSettings::client_config`] plus the producer settings every
    /// function uses: every replica acknowledges, the idempotent producer
    /// keeps order and drops duplicates across its own retries, keys hash
    /// as in the Java client (murmur2), and batches are compressed only if
    /// the operator chose a codec ([`Compression`]).
    pub fn producer_config(&self) -> ClientConfig {
        let mut c = self.client_config();
        c.set("acks", "all")
            .set("enable.idempotence", "true")
            .set("max.in.flight.requests.per.connection", "5")
            .set("partitioner", "murmur2_random")
            .set("compression.type", self.compression.name())
            .set("linger.ms", "5")
            // Bounded so that a delivery is settled well within the
            // function's timeout.
            .set("message.timeout.ms", "30000")
            .set("request.timeout.ms", "10000")
            // librdkafka connects to the broker the cluster's metadata
            // names at most every reconnect.backoff.ms / 2 (at least 11 ms)
            // after the bootstrap connection: 50 ms with the default 100,
            // all of it added to the first event after a cold start (see
            // `connect_early`). A reconnection after a broker went away
            // starts this soon too, and backs off exponentially up to
            // reconnect.backoff.max.ms (10 s) as before.
            .set("reconnect.backoff.ms", "20");
        c
    }

    /// The librdkafka properties as a sorted list, with the password masked:
    /// for logs and tests.
    pub fn describe(config: &ClientConfig) -> Vec<(String, String)> {
        let mut props: Vec<(String, String)> = config
            .config_map()
            .iter()
            .map(|(k, v)| {
                let v = if k.contains("password") {
                    "***".to_owned()
                } else if *k == "ssl.ca.pem" {
                    // Public, but long: its size is enough for a log line.
                    let n = v.matches("-----BEGIN CERTIFICATE-----").count();
                    format!("({n} PEM certificate(s))")
                } else {
                    v.to_string()
                };
                (k.to_string(), v)
            })
            .collect();
        props.sort();
        props
    }
}
