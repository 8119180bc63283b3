//! The command line, parsed by hand (no argument-parsing crate in the
//! workspace): every command and its options, with a table test.

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Topics {
        create: bool,
        partitions: i32,
        replication: i32,
    },
    DatabasesList {
        json: bool,
    },
    DatabasesDescribe {
        name: String,
        json: bool,
    },
    Republish {
        database: String,
        /// Only the transactions whose revision is above this one.
        from_revision: Option<u64>,
    },
    DlqReplay {
        /// Else `DEAD_LETTER_QUEUE_URL`.
        queue_url: Option<String>,
        max_messages: usize,
    },
}

pub const USAGE: &str = "usage:
  evidentsource-admin topics create|verify [--partitions N] [--replication N]
      Creates the four topics (docs/contract.md §1) with retention 1 day (database events: 7 days),
      or verifies existing ones without changing them. Defaults: 3 partitions, replication 3.
  evidentsource-admin databases list [--json]
  evidentsource-admin databases describe NAME [--json]
      The databases in the table (TABLE_NAME, DYNAMODB_ENDPOINT): state, incarnation, revision, times.
  evidentsource-admin republish --database NAME [--from-revision R]
      Sends the database's events again to DATABASE_EVENTS_KAFKA_TOPIC, byte-identical to the
      originals: Created and every transaction, or with R only the transactions whose revision
      is above R (docs/replay.md). Needs BASE_URI as for the publisher.
  evidentsource-admin dlq replay [--queue-url URL] [--max-messages N]
      Republishes the databases the publisher's dead-letter queue (DEAD_LETTER_QUEUE_URL, the
      stack's PublisherDeadLetterQueueUrl output) names, deleting each message once its events
      are acknowledged. Default: at most 1000 messages.
  Kafka connection from KAFKA_BROKERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_* as for the functions.
  Exit status: 0 done, 1 partly failed or differs (see the output), 2 usage or connection error.";

/// Parses the arguments after the program name; the error is the message
/// to print (with the usage).
pub fn parse(args: &[String]) -> Result<Command, String> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let usage = |what: String| format!("{what}\n{USAGE}");
    match words.as_slice() {
        ["topics", action @ ("create" | "verify"), rest @ ..] => {
            let (mut partitions, mut replication) = (3, 3);
            for (flag, value) in pairs(rest).map_err(usage)? {
                let value = value
                    .parse::<i32>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| usage(format!("{flag} needs a positive number")))?;
                match flag {
                    "--partitions" => partitions = value,
                    "--replication" => replication = value,
                    _ => return Err(usage(format!("unknown option {flag}"))),
                }
            }
            Ok(Command::Topics {
                create: *action == "create",
                partitions,
                replication,
            })
        }
        ["databases", "list", rest @ ..] => Ok(Command::DatabasesList {
            json: json_flag(rest).map_err(usage)?,
        }),
        ["databases", "describe", name, rest @ ..] if !name.starts_with("--") => {
            Ok(Command::DatabasesDescribe {
                name: (*name).to_owned(),
                json: json_flag(rest).map_err(usage)?,
            })
        }
        ["republish", rest @ ..] => {
            let (mut database, mut from_revision) = (None, None);
            for (flag, value) in pairs(rest).map_err(usage)? {
                match flag {
                    "--database" if !value.is_empty() => database = Some(value.to_owned()),
                    "--from-revision" => {
                        from_revision = Some(value.parse::<u64>().map_err(|_| {
                            usage(format!(
                                "--from-revision needs a revision (0 or more), not {value:?}"
                            ))
                        })?)
                    }
                    _ => return Err(usage(format!("unknown option {flag}"))),
                }
            }
            Ok(Command::Republish {
                database: database
                    .ok_or_else(|| usage("republish needs --database NAME".into()))?,
                from_revision,
            })
        }
        ["dlq", "replay", rest @ ..] => {
            let (mut queue_url, mut max_messages) = (None, 1000);
            for (flag, value) in pairs(rest).map_err(usage)? {
                match flag {
                    "--queue-url" if !value.is_empty() => queue_url = Some(value.to_owned()),
                    "--max-messages" => {
                        max_messages = value
                            .parse::<usize>()
                            .ok()
                            .filter(|v| *v > 0)
                            .ok_or_else(|| usage("--max-messages needs a positive number".into()))?
                    }
                    _ => return Err(usage(format!("unknown option {flag}"))),
                }
            }
            Ok(Command::DlqReplay {
                queue_url,
                max_messages,
            })
        }
        _ => Err(USAGE.to_owned()),
    }
}

/// `--flag value` pairs.
fn pairs<'a>(rest: &[&'a str]) -> Result<Vec<(&'a str, &'a str)>, String> {
    rest.chunks(2)
        .map(|pair| match pair {
            [flag, value] if flag.starts_with("--") => Ok((*flag, *value)),
            [flag] if flag.starts_with("--") => Err(format!("{flag} needs a value")),
            other => Err(format!("unexpected {:?}", other[0])),
        })
        .collect()
}

fn json_flag(rest: &[&str]) -> Result<bool, String> {
    match rest {
        [] => Ok(false),
        ["--json"] => Ok(true),
        [other, ..] => Err(format!("unexpected {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> Result<Command, String> {
        let args: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
        parse(&args)
    }

    #[test]
    fn command_lines() {
        use Command::*;
        let ok = [
            (
                "topics create --partitions 6 --replication 1",
                Topics {
                    create: true,
                    partitions: 6,
                    replication: 1,
                },
            ),
            (
                "topics verify",
                Topics {
                    create: false,
                    partitions: 3,
                    replication: 3,
                },
            ),
            ("databases list", DatabasesList { json: false }),
            ("databases list --json", DatabasesList { json: true }),
            (
                "databases describe accounts --json",
                DatabasesDescribe {
                    name: "accounts".into(),
                    json: true,
                },
            ),
            (
                "republish --database accounts",
                Republish {
                    database: "accounts".into(),
                    from_revision: None,
                },
            ),
            (
                "republish --from-revision 0 --database a",
                Republish {
                    database: "a".into(),
                    from_revision: Some(0),
                },
            ),
            (
                "dlq replay",
                DlqReplay {
                    queue_url: None,
                    max_messages: 1000,
                },
            ),
            (
                "dlq replay --queue-url http://q/1/dlq --max-messages 5",
                DlqReplay {
                    queue_url: Some("http://q/1/dlq".into()),
                    max_messages: 5,
                },
            ),
        ];
        for (line, expected) in ok {
            assert_eq!(parsed(line), Ok(expected), "{line}");
        }
        for (line, says) in [
            ("", "usage:"),
            ("topics", "usage:"),
            ("topics drop", "usage:"),
            (
                "topics create --partitions 0",
                "--partitions needs a positive number",
            ),
            ("topics create --x 1", "unknown option --x"),
            ("topics create --partitions", "--partitions needs a value"),
            ("databases", "usage:"),
            ("databases list --yaml", "unexpected \"--yaml\""),
            ("databases describe", "usage:"),
            ("databases describe --json", "usage:"),
            ("republish", "needs --database NAME"),
            ("republish --database", "--database needs a value"),
            (
                "republish --database a --from-revision -1",
                "needs a revision",
            ),
            (
                "republish --database a --from-revision x",
                "needs a revision",
            ),
            ("republish --database a extra", "unexpected \"extra\""),
            ("dlq", "usage:"),
            (
                "dlq replay --max-messages 0",
                "--max-messages needs a positive number",
            ),
            ("dlq replay --queue", "--queue needs a value"),
        ] {
            let error = parsed(line).expect_err(line);
            assert!(error.contains(says), "{line}: {error}");
            assert!(error.contains("usage:"), "{line}: {error}");
        }
    }
}
