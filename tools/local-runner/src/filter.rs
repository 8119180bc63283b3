//! Lambda event filtering (`FilterCriteria`) for the patterns the template
//! uses: nested objects whose leaves list the accepted literal values. A
//! record is delivered when any filter matches it; records no filter
//! matches are dropped by the event source, as in AWS. Patterns with other
//! operators (`prefix`, `anything-but`, ...) are refused when read, so the
//! runner never silently filters differently from AWS.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Pattern {
    /// Field name → pattern of that field.
    Object(Vec<(String, Pattern)>),
    /// The field equals one of these values.
    OneOf(Vec<Value>),
}

/// The filters of one event source (an empty list lets everything through).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters(Vec<Pattern>);

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("filter pattern {pattern}: {problem}")]
pub struct FilterError {
    pattern: String,
    problem: String,
}

impl Filters {
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Self, FilterError> {
        let parsed = patterns
            .iter()
            .map(|p| {
                let p = p.as_ref();
                let fail = |problem: String| FilterError {
                    pattern: p.to_owned(),
                    problem,
                };
                let value: Value = serde_json::from_str(p).map_err(|e| fail(e.to_string()))?;
                compile(&value, "").map_err(fail)
            })
            .collect::<Result<_, _>>()?;
        Ok(Filters(parsed))
    }

    /// Whether the event source delivers `record` (its JSON shape, as the
    /// function would receive it).
    pub fn accepts(&self, record: &Value) -> bool {
        self.0.is_empty() || self.0.iter().any(|p| matches(p, Some(record)))
    }
}

fn compile(value: &Value, at: &str) -> Result<Pattern, String> {
    match value {
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| Ok((k.clone(), compile(v, &format!("{at}.{k}"))?)))
            .collect::<Result<_, String>>()
            .map(Pattern::Object),
        Value::Array(values) => {
            if let Some(op) = values.iter().find(|v| v.is_object() || v.is_array()) {
                return Err(format!(
                    "{at}: the operator {op} is not supported locally (only lists of values)"
                ));
            }
            Ok(Pattern::OneOf(values.clone()))
        }
        other => Err(format!("{at}: expected an object or a list, found {other}")),
    }
}

fn matches(pattern: &Pattern, value: Option<&Value>) -> bool {
    match pattern {
        Pattern::Object(fields) => fields
            .iter()
            .all(|(k, p)| matches(p, value.and_then(|v| v.get(k)))),
        Pattern::OneOf(accepted) => value.is_some_and(|v| accepted.contains(v)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const HEAD: &str =
        r#"{"eventName": ["INSERT", "MODIFY"], "dynamodb": {"Keys": {"sk": {"S": ["head"]}}}}"#;

    fn record(event_name: &str, sk: &str) -> Value {
        json!({"eventName": event_name, "dynamodb": {"Keys": {"pk": {"S": "db#x"}, "sk": {"S": sk}}}})
    }

    #[test]
    fn head_pattern_keeps_inserts_and_modifies_of_the_head_item() {
        let filters = Filters::parse(&[HEAD]).unwrap();
        assert!(filters.accepts(&record("INSERT", "head")));
        assert!(filters.accepts(&record("MODIFY", "head")));
        assert!(!filters.accepts(&record("REMOVE", "head")));
        assert!(!filters.accepts(&record("INSERT", "chunk#1")));
        assert!(!filters.accepts(&json!({"eventName": "INSERT"})));
    }

    #[test]
    fn any_filter_may_match_and_none_lets_all_through() {
        let filters = Filters::parse(&[r#"{"eventName": ["REMOVE"]}"#, HEAD]).unwrap();
        assert!(filters.accepts(&record("REMOVE", "chunk#1")));
        assert!(filters.accepts(&record("INSERT", "head")));
        assert!(!filters.accepts(&record("INSERT", "chunk#1")));
        assert!(Filters::parse::<&str>(&[]).unwrap().accepts(&json!({})));
    }

    #[test]
    fn unsupported_operators_are_refused_by_name() {
        let e = Filters::parse(&[r#"{"dynamodb": {"Keys": {"sk": {"S": [{"prefix": "he"}]}}}}"#])
            .unwrap_err();
        assert!(e.problem.contains(".dynamodb.Keys.sk.S"), "{e}");
        assert!(e.problem.contains("prefix"), "{e}");
        assert!(Filters::parse(&["not json"]).is_err());
        assert!(Filters::parse(&[r#"{"eventName": "INSERT"}"#]).is_err());
    }
}
