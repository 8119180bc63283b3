//! `demo`: the `make demo` scenario against a running local stack.
//!
//! `local-runner -- demo` runs it with the stack's variables set; alone, it
//! reads them from `.local/stack.env` (written by `make dev`). Exit status 0
//! only if every check passed.

use std::{collections::HashMap, process::ExitCode};

use evidentsource_local_runner::{
    demo::{self, Endpoints},
    stack::{StackSettings, read_env_file},
};

#[tokio::main]
async fn main() -> ExitCode {
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    if !vars.contains_key("API_URL") {
        let path = match StackSettings::from_env() {
            Ok(s) => s.env_file,
            Err(e) => {
                eprintln!("demo: {e}");
                return ExitCode::from(2);
            }
        };
        match read_env_file(&path) {
            Ok(file) => vars.extend(file),
            Err(e) => {
                eprintln!(
                    "demo: no running stack ({}: {e}); start one with `make dev`, or run `make demo`",
                    path.display()
                );
                return ExitCode::from(2);
            }
        }
    }
    let endpoints = match Endpoints::from_vars(vars) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::from(2);
        }
    };
    match demo::run(&endpoints).await {
        Ok(verdict) if verdict.passed() => {
            println!("\nDemo passed: {} checks.", verdict.checks);
            ExitCode::SUCCESS
        }
        Ok(verdict) => {
            println!(
                "\nDemo FAILED: {} of {} checks:",
                verdict.failures.len(),
                verdict.checks
            );
            for f in &verdict.failures {
                println!("  - {f}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("\nDemo FAILED: it could not run: {e}");
            ExitCode::FAILURE
        }
    }
}
