use std::time::Duration;

use serde_json::json;

use super::*;

const BOUNDS: Bounds = Bounds {
    functions: &["f"],
    outcomes: &["ok", "error"],
    error_codes: &["NOT_FOUND"],
};

#[test]
fn a_record_declares_what_it_holds() {
    let mut m = Metrics::new("Ns", "f");
    m.count("Commits", 1)
        .count("Commits", 2)
        .count("Zero", 0)
        .millis("Latency", Duration::from_millis(5))
        .millis("Latency", Duration::from_millis(7))
        .set_outcome("error")
        .set_error_code("NOT_FOUND");
    assert_eq!(
        m.record(1_700_000_000_000),
        json!({
            "FunctionName": "f",
            "Outcome": "error",
            "ErrorCode": "NOT_FOUND",
            "Commits": 3.0,
            "Zero": 0.0,
            "Latency": [5.0, 7.0],
            "_aws": {
                "Timestamp": 1_700_000_000_000u64,
                "CloudWatchMetrics": [{
                    "Namespace": "Ns",
                    "Dimensions": [["FunctionName"], ["FunctionName", "Outcome"],
                                   ["FunctionName", "ErrorCode"]],
                    "Metrics": [
                        {"Name": "Commits", "Unit": "Count"},
                        {"Name": "Zero", "Unit": "Count"},
                        {"Name": "Latency", "Unit": "Milliseconds"},
                    ],
                }],
            },
        })
    );
    assert_eq!(check(&m.record(0), &BOUNDS), Ok(()));
}

#[test]
fn values_stop_at_the_emf_cap() {
    let mut m = Metrics::new("Ns", "f");
    for _ in 0..MAX_VALUES + 5 {
        m.millis("Latency", Duration::from_millis(1));
    }
    assert_eq!(m.get("Latency").map(<[f64]>::len), Some(MAX_VALUES));
    assert_eq!(check(&m.record(0), &BOUNDS), Ok(()));
}

#[test]
fn check_refuses_what_cloudwatch_would_drop_or_an_operator_regret() {
    let good = Metrics::new("Ns", "f").count("A", 1).record(0);
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut record = good.clone();
        edit(&mut record);
        record
    };
    let table: Vec<(&str, Value, &str)> = vec![
        ("good", good.clone(), ""),
        (
            "declared, missing",
            with(&|r| {
                r.as_object_mut().unwrap().remove("A");
            }),
            "declared but not a member",
        ),
        (
            "not numeric",
            with(&|r| r["A"] = json!("1")),
            "not a number",
        ),
        (
            "unbounded function",
            with(&|r| r["FunctionName"] = json!("g")),
            "bounded set",
        ),
        (
            "unknown outcome",
            with(&|r| r["Outcome"] = json!("maybe")),
            "bounded set",
        ),
        (
            "a database as a dimension",
            with(&|r| {
                r["Database"] = json!("orders");
                r["_aws"]["CloudWatchMetrics"][0]["Dimensions"][1] =
                    json!(["FunctionName", "Database"]);
            }),
            "not one of the contract's",
        ),
        (
            "ten keys",
            with(&|r| {
                r["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0] =
                    json!(vec!["FunctionName"; 10]);
            }),
            "at most 9",
        ),
        (
            "dimension missing",
            with(&|r| {
                r.as_object_mut().unwrap().remove("Outcome");
            }),
            "not a string member",
        ),
        (
            "101 metrics",
            with(&|r| {
                r["_aws"]["CloudWatchMetrics"][0]["Metrics"] =
                    json!(vec![json!({"Name": "A"}); 101]);
            }),
            "at most 100",
        ),
    ];
    for (what, record, error) in table {
        match check(&record, &BOUNDS) {
            Ok(()) => assert_eq!(error, "", "{what}: passed"),
            Err(e) => assert!(!error.is_empty() && e.contains(error), "{what}: {e}"),
        }
    }
}

#[test]
fn the_sink_gets_one_line_per_record() {
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let shared = Shared::default();
    assert!(set_sink(Box::new(shared.clone())));
    Metrics::new("Ns", "f").count("A", 1).emit();
    Metrics::new("Ns", "f").count("A", 2).emit();
    let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[1]["A"], json!(2.0));
    assert!(!set_sink(Box::new(std::io::sink())), "the sink is set once");
}
