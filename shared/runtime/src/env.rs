//! The error of a setting read from the environment.

/// A required variable missing, or a value that does not parse or
/// contradicts another; `var` names the environment variable to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct EnvError {
    pub var: &'static str,
    pub problem: String,
}

impl EnvError {
    pub fn new(var: &'static str, problem: impl Into<String>) -> Self {
        EnvError {
            var,
            problem: problem.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_variable_then_the_problem() {
        for (error, text) in [
            (
                EnvError::new("TABLE_NAME", "is required"),
                "TABLE_NAME: is required",
            ),
            (
                EnvError::new("BASE_URI", format!("{:?} is not a URI", "x")),
                "BASE_URI: \"x\" is not a URI",
            ),
        ] {
            assert_eq!(error.to_string(), text);
        }
    }
}
