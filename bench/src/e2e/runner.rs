//! The stack under measurement: the `local-runner` binary as a child
//! process, as `make dev` runs it, against the bench's servers.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use evidentsource_local_runner::stack::read_env_file;
use evidentsource_local_servers::{LocalServers, unique_name, workspace_root};

/// The `local-runner` child: the stack as `make dev` runs it.
pub struct Runner {
    child: tokio::process::Child,
    pub api_url: String,
    /// The stack's database-events topic (its own, fresh).
    pub topic: String,
    /// Where its stderr goes.
    pub log: PathBuf,
}

impl Runner {
    pub async fn start(servers: &LocalServers, dir: &Path) -> Result<Self, String> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let exe = std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("local-runner");
        if !exe.is_file() {
            return Err(format!(
                "{} missing: `make bench` builds it (cargo build --release -p evidentsource-local-runner)",
                exe.display()
            ));
        }
        let stack_env = dir.join("stack.env");
        let log = dir.join("runner.log");
        let topic = unique_name("bench-e2e-events");
        let mut command = tokio::process::Command::new(&exe);
        for var in [
            "EVIDENTSOURCE_API_PORT",
            "EVIDENTSOURCE_TEMPLATE_PARAMETERS",
            "BASE_URI",
        ] {
            command.env_remove(var);
        }
        let mut child = command
            .env("DYNAMODB_ENDPOINT", &servers.dynamodb_endpoint)
            .env("KAFKA_BROKERS", &servers.kafka_brokers)
            .env("TABLE_NAME", unique_name("bench-e2e"))
            .env("DATABASE_EVENTS_KAFKA_TOPIC", &topic)
            .env("EVIDENTSOURCE_STACK_ENV", &stack_env)
            .env(
                "EVIDENTSOURCE_TEMPLATE",
                workspace_root().join("template.yaml"),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        let until = Instant::now() + Duration::from_secs(120);
        while !stack_env.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "local-runner exited ({status}); see {}",
                    log.display()
                ));
            }
            if Instant::now() >= until {
                return Err(format!(
                    "local-runner not up within 120 s; see {}",
                    log.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let vars = read_env_file(&stack_env).map_err(|e| e.to_string())?;
        let api_url = vars
            .into_iter()
            .find_map(|(k, v)| (k == "API_URL").then_some(v))
            .ok_or("stack.env has no API_URL")?;
        Ok(Runner {
            child,
            api_url,
            topic,
            log,
        })
    }

    /// SIGTERM, as Ctrl-C in `make dev`: the runner stops what it started.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on the pid of our own child, not yet reaped.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
    }
}
