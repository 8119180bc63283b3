//! The test side of the functions' metrics: reads the EMF records a run
//! wrote (one JSON object a line) and checks each against the EMF JSON
//! schema (`emf.schema.json` beside this crate, validated by the
//! `jsonschema` package of the project venv) and against
//! [`evidentsource_runtime::metrics::check`], what the schema cannot say.

use std::{path::Path, process::Command};

use evidentsource_runtime::metrics::{Bounds, check};
use serde_json::Value;

use crate::Venv;

/// The schema, written from the EMF specification.
pub fn schema_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("emf.schema.json")
}

/// The records in `path`, one JSON object a line.
pub fn read_records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

const VALIDATE: &str = r#"
import json, sys
from jsonschema import Draft7Validator
schema = json.load(open(sys.argv[1]))
Draft7Validator.check_schema(schema)
validator = Draft7Validator(schema)
errors = 0
for n, line in enumerate(open(sys.argv[2]), 1):
    for e in validator.iter_errors(json.loads(line)):
        print(f"record {n}: {e.json_path}: {e.message}")
        errors += 1
sys.exit(1 if errors else 0)
"#;

/// Checks every record in `path` (at least one): the schema first, then
/// [`check`] with `bounds`. The error names the record and the rule.
pub fn check_file(path: &Path, bounds: &Bounds) -> Result<Vec<Value>, String> {
    let records = read_records(path);
    if records.is_empty() {
        return Err(format!("{}: no records", path.display()));
    }
    let venv = Venv::locate().map_err(|e| e.to_string())?;
    let output = Command::new(venv.root().join("bin/python"))
        .arg("-c")
        .arg(VALIDATE)
        .arg(schema_path())
        .arg(path)
        .output()
        .map_err(|e| format!("python: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "not EMF by the schema:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    for (n, record) in records.iter().enumerate() {
        check(record, bounds).map_err(|e| format!("record {}: {e}: {record}", n + 1))?;
    }
    Ok(records)
}
