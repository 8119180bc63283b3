/// The four topics (docs/contract.md §1), each overridable by its variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub transaction_proposals: String,
    pub database_events: String,
    pub async_commands: String,
    pub async_responses: String,
}

impl Topics {
    pub const VARS: [(&'static str, &'static str); 4] = [
        (
            "TRANSACTION_PROPOSALS_KAFKA_TOPIC",
            "evidentsource-transaction-proposals",
        ),
        (
            "DATABASE_EVENTS_KAFKA_TOPIC",
            "evidentsource-database-events",
        ),
        ("ASYNC_COMMANDS_KAFKA_TOPIC", "evidentsource-async-commands"),
        (
            "ASYNC_RESPONSES_KAFKA_TOPIC",
            "evidentsource-async-responses",
        ),
    ];

    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |(var, default): (&str, &str)| {
            lookup(var)
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Topics {
            transaction_proposals: get(Self::VARS[0]),
            database_events: get(Self::VARS[1]),
            async_commands: get(Self::VARS[2]),
            async_responses: get(Self::VARS[3]),
        }
    }
}

impl Default for Topics {
    fn default() -> Self {
        Self::from_lookup(|_| None)
    }
}
