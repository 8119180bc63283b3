//! One CloudWatch Embedded Metric Format (EMF) record per invocation,
//! printed as one raw JSON line on stdout, where CloudWatch Logs extracts
//! the metrics (docs/metrics.md lists each function's).
//!
//! Why a small writer and not a crate: `metrique` (awslabs) is built for
//! unit-of-work records like these, but brings a proc-macro, a writer
//! framework and a background sink for what is here one fixed object of at
//! most eight metrics; `metrics_cloudwatch_embedded` aggregates counters
//! between flushes (the `metrics` facade), which is not "one record per
//! invocation". The format is pinned instead by a test that validates what
//! every function emits against the EMF JSON schema (see
//! `testing/local-servers/src/emf.rs`) and by [`check`].
//!
//! The record is written straight to its sink, never through the tracing
//! subscriber: Lambda's JSON log format would wrap it in a log object, and
//! CloudWatch only extracts EMF from a line that *is* the EMF object.
//!
//! Dimensions are bounded by construction: metric names, the outcome and
//! the error code are `&'static str` (a fixed set in the code), the
//! function name is the deployment's. No database name, transaction id or
//! other per-request value can become a dimension.

use std::{
    io::Write,
    sync::{Mutex, OnceLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value, json};

/// The namespace's environment variable (template parameter
/// `MetricsNamespace`).
pub const NAMESPACE_VAR: &str = "METRICS_NAMESPACE";
pub const DEFAULT_NAMESPACE: &str = "EvidentSource";
/// Set by Lambda: the function's physical name.
pub const FUNCTION_NAME_VAR: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// EMF caps: values per metric, metrics per directive, keys per dimension set.
pub const MAX_VALUES: usize = 100;
pub const MAX_METRICS: usize = 100;
pub const MAX_DIMENSIONS: usize = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    pub const fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One invocation's metrics: filled by the handler, emitted once by the
/// function's entry point (on error paths too).
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    namespace: String,
    function: String,
    outcome: &'static str,
    error_code: Option<&'static str>,
    values: Vec<(&'static str, Unit, Vec<f64>)>,
}

impl Metrics {
    /// Namespace from `METRICS_NAMESPACE`, function name from
    /// `AWS_LAMBDA_FUNCTION_NAME`; `fallback` (the crate's short name, e.g.
    /// `stream-publisher`) outside Lambda.
    pub fn from_env(fallback: &str) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Metrics::new(
            var(NAMESPACE_VAR).as_deref().unwrap_or(DEFAULT_NAMESPACE),
            var(FUNCTION_NAME_VAR).as_deref().unwrap_or(fallback),
        )
    }

    pub fn new(namespace: &str, function: &str) -> Self {
        Metrics {
            namespace: namespace.to_owned(),
            function: function.to_owned(),
            outcome: "ok",
            error_code: None,
            values: Vec::new(),
        }
    }

    pub fn function(&self) -> &str {
        &self.function
    }

    pub fn outcome(&self) -> &'static str {
        self.outcome
    }

    pub fn set_outcome(&mut self, outcome: &'static str) -> &mut Self {
        self.outcome = outcome;
        self
    }

    /// Adds the `ErrorCode` dimension set (a contract code: bounded).
    pub fn set_error_code(&mut self, code: &'static str) -> &mut Self {
        self.error_code = Some(code);
        self
    }

    /// Adds `n` to count `name` (declared even when 0: an alarm on its Sum
    /// then sees data, not "missing").
    pub fn count(&mut self, name: &'static str, n: u64) -> &mut Self {
        let slot = self.slot(name, Unit::Count);
        match slot.first_mut() {
            Some(total) => *total += n as f64,
            None => slot.push(n as f64),
        }
        self
    }

    /// One more value of `name` in milliseconds; EMF takes at most
    /// [`MAX_VALUES`] per metric and record, further ones are dropped.
    pub fn millis(&mut self, name: &'static str, value: Duration) -> &mut Self {
        self.value(name, Unit::Milliseconds, value.as_micros() as f64 / 1000.0)
    }

    /// One more value of `name` in `unit`.
    pub fn value(&mut self, name: &'static str, unit: Unit, value: f64) -> &mut Self {
        let slot = self.slot(name, unit);
        if slot.len() < MAX_VALUES {
            slot.push(value);
        }
        self
    }

    /// The values recorded for `name` (tests, logs).
    pub fn get(&self, name: &str) -> Option<&[f64]> {
        self.values
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, v)| v.as_slice())
    }

    fn slot(&mut self, name: &'static str, unit: Unit) -> &mut Vec<f64> {
        let at = match self.values.iter().position(|(n, _, _)| *n == name) {
            Some(at) => at,
            None => {
                self.values.push((name, unit, Vec::new()));
                self.values.len() - 1
            }
        };
        &mut self.values[at].2
    }

    /// The EMF object at `timestamp` (ms since the epoch). A metric with
    /// no value (a latency with nothing measured) is left out: EMF needs a
    /// value for every metric it declares.
    pub fn record(&self, timestamp: u64) -> Value {
        let mut dimensions = vec![json!(["FunctionName"]), json!(["FunctionName", "Outcome"])];
        let mut root = Map::new();
        root.insert("FunctionName".into(), self.function.clone().into());
        root.insert("Outcome".into(), self.outcome.into());
        if let Some(code) = self.error_code {
            dimensions.push(json!(["FunctionName", "ErrorCode"]));
            root.insert("ErrorCode".into(), code.into());
        }
        let mut declared = Vec::new();
        for (name, unit, values) in self.values.iter().filter(|(_, _, v)| !v.is_empty()) {
            declared.push(json!({"Name": name, "Unit": unit.as_str()}));
            let value = match values.as_slice() {
                [one] => json!(one),
                many => json!(many),
            };
            root.insert((*name).into(), value);
        }
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": dimensions,
                    "Metrics": declared,
                }],
            }),
        );
        Value::Object(root)
    }

    /// Writes the record, one line, to the process's sink (stdout unless
    /// [`set_sink`] chose another). A failed write is reported on stderr:
    /// losing a metric must not fail the invocation.
    pub fn emit(&self) {
        let line = format!("{}\n", self.record(now_millis()));
        let mut sink = sink().lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = sink.write_all(line.as_bytes()).and_then(|()| sink.flush()) {
            eprintln!("metrics record not written: {e}");
        }
    }
}

type Sink = Mutex<Box<dyn Write + Send>>;

static SINK: OnceLock<Sink> = OnceLock::new();

fn sink() -> &'static Sink {
    SINK.get_or_init(|| Mutex::new(Box::new(std::io::stdout())))
}

/// Where [`Metrics::emit`] writes, for the whole process (the local runner
/// and tests: a file). False when records were already written elsewhere.
pub fn set_sink(sink: Box<dyn Write + Send>) -> bool {
    SINK.set(Mutex::new(sink)).is_ok()
}

/// Now, in ms since the epoch (EMF's timestamp).
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a record's dimensions may hold, for [`check`].
#[derive(Debug, Clone, Copy)]
pub struct Bounds<'a> {
    pub functions: &'a [&'a str],
    pub outcomes: &'a [&'a str],
    pub error_codes: &'a [&'a str],
}

/// The checks the EMF JSON schema cannot express: every declared metric
/// and dimension key is a top-level member, metric values are numbers (or
/// arrays of at most 100), dimension values come from `bounds`, at most 9
/// keys per dimension set and 100 metrics per directive.
pub fn check(record: &Value, bounds: &Bounds) -> Result<(), String> {
    let directives = record["_aws"]["CloudWatchMetrics"]
        .as_array()
        .ok_or("no _aws.CloudWatchMetrics array")?;
    for directive in directives {
        let metrics = directive["Metrics"].as_array().ok_or("no Metrics array")?;
        if metrics.len() > MAX_METRICS {
            return Err(format!("{} metrics (at most {MAX_METRICS})", metrics.len()));
        }
        for metric in metrics {
            let name = metric["Name"].as_str().ok_or("a metric without a Name")?;
            match &record[name] {
                Value::Number(_) => {}
                Value::Array(values)
                    if !values.is_empty()
                        && values.len() <= MAX_VALUES
                        && values.iter().all(Value::is_number) => {}
                Value::Null => return Err(format!("metric {name} declared but not a member")),
                other => return Err(format!("metric {name}: {other} is not a number")),
            }
        }
        let sets = directive["Dimensions"]
            .as_array()
            .ok_or("no Dimensions array")?;
        for set in sets {
            let keys = set.as_array().ok_or("a dimension set is not an array")?;
            if keys.len() > MAX_DIMENSIONS {
                return Err(format!(
                    "{} dimension keys (at most {MAX_DIMENSIONS})",
                    keys.len()
                ));
            }
            for key in keys {
                let key = key.as_str().ok_or("a dimension key is not a string")?;
                let value = record[key]
                    .as_str()
                    .ok_or_else(|| format!("dimension {key} is not a string member"))?;
                let allowed = match key {
                    "FunctionName" => bounds.functions,
                    "Outcome" => bounds.outcomes,
                    "ErrorCode" => bounds.error_codes,
                    _ => return Err(format!("dimension {key} is not one of the contract's")),
                };
                if !allowed.contains(&value) {
                    return Err(format!(
                        "dimension {key}={value:?} is not in its bounded set"
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
