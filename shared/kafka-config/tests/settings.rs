//! Every protocol × mechanism combination, the librdkafka properties it
//! yields or the error naming the variable, and secrets kept out of sight.

use std::collections::HashMap;

use evidentsource_kafka_config::{
    Compression, KafkaSettings, SaslMechanism, SecurityProtocol, Topics,
};
use rdkafka::producer::BaseProducer;

fn settings(vars: &[(&str, &str)]) -> Result<KafkaSettings, evidentsource_kafka_config::EnvError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    KafkaSettings::from_lookup(|k| map.get(k).cloned())
}

fn props(s: &KafkaSettings) -> HashMap<String, String> {
    KafkaSettings::describe(&s.client_config())
        .into_iter()
        .collect()
}

const PASSWORD: &str = "pa55-w0rd-xyzzy";

#[test]
fn every_protocol_and_mechanism() {
    let protocols = [
        None,
        Some("PLAINTEXT"),
        Some("SSL"),
        Some("SASL_SSL"),
        Some("SASL_PLAINTEXT"),
        Some("KERBEROS"),
    ];
    let mechanisms = [
        None,
        Some("PLAIN"),
        Some("SCRAM-SHA-256"),
        Some("SCRAM-SHA-512"),
        Some("AWS_MSK_IAM"),
        Some("GSSAPI"),
    ];
    let mut checked = 0;
    for protocol in protocols {
        for mechanism in mechanisms {
            let mut vars = vec![
                ("KAFKA_BROKERS", "b1:9092,b2:9092"),
                ("AWS_REGION", "eu-west-1"),
            ];
            if let Some(p) = protocol {
                vars.push(("KAFKA_SECURITY_PROTOCOL", p));
            }
            if let Some(m) = mechanism {
                vars.push(("KAFKA_SASL_MECHANISM", m));
                if m != "AWS_MSK_IAM" {
                    vars.push(("KAFKA_SASL_USERNAME", "evidentsource"));
                    vars.push(("KAFKA_SASL_PASSWORD", PASSWORD));
                }
            }
            let result = settings(&vars);
            let what = format!("{protocol:?} × {mechanism:?}");
            // The expected outcome, from the rules.
            let expected_error: Option<&str> = match (protocol, mechanism) {
                (Some("KERBEROS"), _) => Some("KAFKA_SECURITY_PROTOCOL"),
                (_, Some("GSSAPI")) => Some("KAFKA_SASL_MECHANISM"),
                (None | Some("PLAINTEXT") | Some("SSL"), Some(_)) => {
                    Some("KAFKA_SECURITY_PROTOCOL")
                }
                (Some("SASL_SSL") | Some("SASL_PLAINTEXT"), None) => Some("KAFKA_SASL_MECHANISM"),
                (Some("SASL_PLAINTEXT"), Some("AWS_MSK_IAM")) => Some("KAFKA_SECURITY_PROTOCOL"),
                _ => None,
            };
            match (expected_error, result) {
                (Some(var), Err(e)) => {
                    assert_eq!(e.var, var, "{what}: {e}");
                    assert!(!e.to_string().contains(PASSWORD), "{what}");
                }
                (Some(var), Ok(s)) => panic!("{what}: expected an error on {var}, got {s:?}"),
                (None, Err(e)) => panic!("{what}: unexpected {e}"),
                (None, Ok(s)) => {
                    let p = props(&s);
                    assert_eq!(p["bootstrap.servers"], "b1:9092,b2:9092", "{what}");
                    let expected_protocol = match protocol {
                        None | Some("PLAINTEXT") => "plaintext",
                        Some("SSL") => "ssl",
                        Some("SASL_SSL") => "sasl_ssl",
                        _ => "sasl_plaintext",
                    };
                    assert_eq!(p["security.protocol"], expected_protocol, "{what}");
                    assert_eq!(
                        p.get("ssl.ca.location").map(String::as_str),
                        s.protocol.is_tls().then_some("probe"),
                        "{what}"
                    );
                    match mechanism {
                        None => assert!(!p.contains_key("sasl.mechanism"), "{what}"),
                        Some("AWS_MSK_IAM") => {
                            assert_eq!(p["sasl.mechanism"], "OAUTHBEARER", "{what}");
                            assert!(
                                !p.contains_key("sasl.username")
                                    && !p.contains_key("sasl.password")
                            );
                            assert!(
                                !p.contains_key("enable.sasl.oauthbearer.unsecure.jwt"),
                                "{what}"
                            );
                            assert_eq!(s.mechanism, Some(SaslMechanism::AwsMskIam));
                        }
                        Some(m) => {
                            assert_eq!(p["sasl.mechanism"], m, "{what}");
                            assert_eq!(p["sasl.username"], "evidentsource");
                            assert_eq!(p["sasl.password"], "***", "masked in describe()");
                            assert_eq!(
                                s.client_config().get("sasl.password"),
                                Some(PASSWORD),
                                "{what}"
                            );
                        }
                    }
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 36);
}

#[test]
fn invalid_settings_name_the_variable() {
    let base = [("KAFKA_BROKERS", "b:9092")];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v: Vec<(&str, &str)> = base.to_vec();
        v.extend_from_slice(extra);
        settings(&v).unwrap_err()
    };
    assert_eq!(settings(&[]).unwrap_err().var, "KAFKA_BROKERS");
    assert_eq!(
        settings(&[("KAFKA_BROKERS", " , ")]).unwrap_err().var,
        "KAFKA_BROKERS"
    );
    assert_eq!(
        settings(&[("KAFKA_BROKERS", "b:9092,nohost")])
            .unwrap_err()
            .var,
        "KAFKA_BROKERS"
    );
    assert_eq!(
        settings(&[("KAFKA_BROKERS", "b:port")]).unwrap_err().var,
        "KAFKA_BROKERS"
    );
    let scram = [
        ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
    ];
    assert_eq!(
        with(&scram).var,
        "KAFKA_SASL_USERNAME",
        "SCRAM without credentials"
    );
    assert_eq!(
        with(&[scram[0], scram[1], ("KAFKA_SASL_USERNAME", "u")]).var,
        "KAFKA_SASL_PASSWORD"
    );
    let e = with(&[
        scram[0],
        scram[1],
        ("KAFKA_SASL_USERNAME", "u"),
        ("KAFKA_SASL_PASSWORD", PASSWORD),
        ("KAFKA_SASL_SECRET_ARN", "arn:s"),
    ]);
    assert_eq!(e.var, "KAFKA_SASL_SECRET_ARN");
    let iam = [
        ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        ("KAFKA_SASL_MECHANISM", "AWS_MSK_IAM"),
    ];
    assert_eq!(with(&iam).var, "AWS_REGION");
    let e = with(&[
        iam[0],
        iam[1],
        ("AWS_REGION", "us-east-1"),
        ("KAFKA_SASL_PASSWORD", PASSWORD),
    ]);
    assert_eq!(e.var, "KAFKA_SASL_PASSWORD");
    assert!(!e.to_string().contains(PASSWORD));
    assert_eq!(
        with(&[("KAFKA_SASL_USERNAME", "u")]).var,
        "KAFKA_SASL_USERNAME",
        "credentials without SASL"
    );
    assert_eq!(
        with(&[("KAFKA_SSL_CA_LOCATION", "/etc/hosts")]).var,
        "KAFKA_SSL_CA_LOCATION",
        "CA without TLS"
    );
    assert_eq!(
        with(&[
            ("KAFKA_SECURITY_PROTOCOL", "SSL"),
            ("KAFKA_SSL_CA_LOCATION", "/nonexistent/ca.pem")
        ])
        .var,
        "KAFKA_SSL_CA_LOCATION"
    );
    let ok = settings(&[
        ("KAFKA_BROKERS", "b:9092"),
        ("KAFKA_SECURITY_PROTOCOL", "ssl"),
        ("KAFKA_SSL_CA_LOCATION", "/etc/hosts"),
    ])
    .unwrap();
    assert_eq!(ok.protocol, SecurityProtocol::Ssl);
    assert_eq!(props(&ok)["ssl.ca.location"], "/etc/hosts");
}

#[test]
fn the_password_never_shows() {
    let s = settings(&[
        ("KAFKA_BROKERS", "b:9092"),
        ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        ("KAFKA_SASL_MECHANISM", "PLAIN"),
        ("KAFKA_SASL_USERNAME", "u"),
        ("KAFKA_SASL_PASSWORD", PASSWORD),
    ])
    .unwrap();
    for text in [
        format!("{s:?}"),
        format!("{:?}", s.credentials),
        format!("{}", s.credentials.as_ref().unwrap().password),
        format!("{:?}", KafkaSettings::describe(&s.producer_config())),
    ] {
        assert!(!text.contains(PASSWORD), "{text}");
    }
}

#[test]
fn producer_settings() {
    let s = settings(&[("KAFKA_BROKERS", "b:9092")]).unwrap();
    let p: HashMap<_, _> = KafkaSettings::describe(&s.producer_config())
        .into_iter()
        .collect();
    assert_eq!(p["acks"], "all");
    assert_eq!(p["enable.idempotence"], "true");
    assert_eq!(p["partitioner"], "murmur2_random");
    // gzip by default: kafka-python and kafkajs decode no other codec
    // without extra packages.
    assert_eq!(p["compression.type"], "gzip");
    // The broker the metadata names is connected to within 11 ms of the
    // bootstrap connection (librdkafka waits reconnect.backoff.ms / 2, at
    // least 11 ms), not 50: that wait comes before every first event.
    let backoff: u64 = p["reconnect.backoff.ms"].parse().unwrap();
    assert!(backoff <= 22, "reconnect.backoff.ms {backoff}");
}

#[test]
fn compression_is_the_operators_choice() {
    for (value, expected) in [
        ("none", "none"),
        ("gzip", "gzip"),
        ("GZIP", "gzip"),
        ("snappy", "snappy"),
        ("lz4", "lz4"),
        (" zstd ", "zstd"),
        ("", "gzip"),
    ] {
        let s = settings(&[
            ("KAFKA_BROKERS", "b:9092"),
            ("KAFKA_COMPRESSION_TYPE", value),
        ])
        .unwrap_or_else(|e| panic!("{value:?}: {e}"));
        let p: HashMap<_, _> = KafkaSettings::describe(&s.producer_config())
            .into_iter()
            .collect();
        assert_eq!(p["compression.type"], expected, "{value:?}");
    }
    for bad in ["lz5", "brotli", "gzip,lz4"] {
        let e =
            settings(&[("KAFKA_BROKERS", "b:9092"), ("KAFKA_COMPRESSION_TYPE", bad)]).unwrap_err();
        assert_eq!(e.var, "KAFKA_COMPRESSION_TYPE", "{bad:?}");
        assert!(e.problem.contains(bad), "{e}");
    }
}

/// librdkafka refuses a codec it was built without only when the producer
/// is created: every codec the variable accepts must be in the build.
#[test]
fn every_accepted_codec_is_built_into_librdkafka() {
    for codec in Compression::ALL {
        let s = settings(&[
            ("KAFKA_BROKERS", "127.0.0.1:9"),
            ("KAFKA_COMPRESSION_TYPE", codec.name()),
        ])
        .unwrap();
        let created: Result<BaseProducer, _> = s.producer_config().create();
        assert!(created.is_ok(), "{}: {:?}", codec.name(), created.err());
    }
}

#[test]
fn topics_default_and_override() {
    let t =
        Topics::from_lookup(|k| (k == "ASYNC_COMMANDS_KAFKA_TOPIC").then(|| "cmds".to_string()));
    assert_eq!(t.database_events, "evidentsource-database-events");
    assert_eq!(t.async_commands, "cmds");
    assert_eq!(t.async_responses, "evidentsource-async-responses");
    assert_eq!(
        t.transaction_proposals,
        "evidentsource-transaction-proposals"
    );
}
