use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Mutex, OnceLock, mpsc},
    thread,
    time::{Duration, Instant},
};

use crate::{Error, Venv};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A server child process, stopped (SIGTERM, then SIGKILL) on drop, and
/// killed by the kernel if this process dies first (PR_SET_PDEATHSIG).
#[derive(Debug)]
pub struct ServerProcess {
    name: &'static str,
    port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl ServerProcess {
    /// `moto` or `tansu`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> &PathBuf {
        &self.log
    }

    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) on the pid of a child we own and have not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn start_moto(venv: &Venv, port: Option<u16>) -> Result<ServerProcess, Error> {
    venv.moto_server()?;
    // Our launcher: moto with requests serialized (scripts/moto_server.py
    // says why).
    let python = venv.root().join("bin/python");
    let script = crate::workspace_root().join("scripts/moto_server.py");
    start("moto", port, |port| {
        let mut c = Command::new(&python);
        c.arg(&script)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        c
    })
}

pub(crate) fn start_tansu(venv: &Venv, port: Option<u16>) -> Result<ServerProcess, Error> {
    start_tansu_advertising(venv, port, None)
}

/// tansu, telling clients in metadata to connect to `advertised` (e.g. a
/// TLS front) instead of its own listener.
pub(crate) fn start_tansu_advertising(
    venv: &Venv,
    port: Option<u16>,
    advertised: Option<&str>,
) -> Result<ServerProcess, Error> {
    let program = venv.tansu()?;
    start("tansu", port, |port| {
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = advertised.map_or_else(|| url.clone(), str::to_owned);
        let mut c = Command::new(&program);
        c.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &advertised,
            "--storage-engine",
            "memory://tansu/",
        ]);
        c
    })
}

/// Starts a server and waits until its port accepts connections. With no
/// port given, a free one is picked; if another process takes it first the
/// server exits and a new port is tried.
fn start(
    name: &'static str,
    port: Option<u16>,
    command: impl Fn(u16) -> Command,
) -> Result<ServerProcess, Error> {
    let attempts = if port.is_some() { 1 } else { 3 };
    let mut last = None;
    for _ in 0..attempts {
        let port = match port {
            Some(p) => p,
            None => free_port()?,
        };
        let log = log_path(name, port);
        let file = File::create(&log).map_err(|source| Error::Spawn {
            server: name,
            source,
        })?;
        let err = file.try_clone().map_err(|source| Error::Spawn {
            server: name,
            source,
        })?;
        let mut cmd = command(port);
        cmd.stdin(Stdio::null()).stdout(file).stderr(err);
        let child = spawn_tied_to_this_process(cmd).map_err(|source| Error::Spawn {
            server: name,
            source,
        })?;
        let mut process = ServerProcess {
            name,
            port,
            child: Some(child),
            log,
        };
        match wait_ready(&mut process) {
            Ok(()) => return Ok(process),
            Err(e) => {
                process.stop();
                last = Some(e);
            }
        }
    }
    Err(last.expect("at least one attempt"))
}

fn wait_ready(process: &mut ServerProcess) -> Result<(), Error> {
    let addr = SocketAddr::from(([127, 0, 0, 1], process.port));
    let started = Instant::now();
    while started.elapsed() < READY_TIMEOUT {
        let exited = process
            .child
            .as_mut()
            .map(|c| matches!(c.try_wait(), Ok(Some(_))));
        if exited == Some(true) {
            break;
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err(Error::NotReady {
        server: process.name,
        port: process.port,
        waited: started.elapsed(),
        log: log_tail(&process.log),
    })
}

pub(crate) fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(Error::NoPort)?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(Error::NoPort)
}

fn log_path(name: &str, port: u16) -> PathBuf {
    let dir = std::env::temp_dir().join("evidentsource-local-servers");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{name}-{port}.log"))
}

fn log_tail(path: &PathBuf) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(4000)));
        let _ = f.read_to_string(&mut text);
    }
    text
}

/// Spawns `cmd` so that it dies with this process.
///
/// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not
/// the process, and test harnesses run tests on short-lived threads; so every
/// child is forked from one spawner thread that lives as long as the process.
fn spawn_tied_to_this_process(cmd: Command) -> std::io::Result<Child> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("local-servers-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    // Out of the terminal's process group: Ctrl-C reaches
                    // the owner, which stops the servers once its own work
                    // is done (and if it dies, PDEATHSIG kills them).
                    cmd.process_group(0);
                    // SAFETY: prctl is async-signal-safe; nothing else runs
                    // between fork and exec.
                    unsafe {
                        cmd.pre_exec(|| {
                            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                            Ok(())
                        });
                    }
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn the local-servers spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?
}
