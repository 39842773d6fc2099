//! The built `agentwire` binary as a user runs it: one-shot commands ([`Agentwire::run`]) and
//! `agentwire serve` as a child process ([`Agentwire::serve`]) whose log is kept for the test.
//!
//! Cargo tells only the cli crate's own tests where the binary is (`CARGO_BIN_EXE_agentwire`), so
//! they pass the path to [`Agentwire::new`]. Every command starts with no `AGENTWIRE_*` variable
//! from the calling environment, so a developer's shell cannot change a test's outcome; a test
//! sets what it means to set. Children are killed when their handle is dropped, so a failing test
//! leaves no server behind.

use crate::http::{HttpResponse, http_blocking};
use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long [`Agentwire::serve`] waits for the server to say where it listens.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The built binary.
#[derive(Debug, Clone)]
pub struct Agentwire {
    bin: PathBuf,
}

/// A finished command: exit code (`None` when killed by a signal) and its output as text.
#[derive(Debug, Clone)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl Agentwire {
    /// The binary at `bin` (from a cli test: `env!("CARGO_BIN_EXE_agentwire")`).
    pub fn new(bin: impl Into<PathBuf>) -> Agentwire {
        Agentwire { bin: bin.into() }
    }

    /// `agentwire ARGS...` with no inherited `AGENTWIRE_*` variable; the caller picks stdio.
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut command = Command::new(&self.bin);
        command.args(args);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AGENTWIRE_") {
                command.env_remove(name);
            }
        }
        command
    }

    /// Runs `agentwire ARGS...` to its end with these environment variables.
    ///
    /// # Panics
    /// When the binary cannot be started.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Finished {
        let output = self
            .command(args)
            .envs(env.iter().copied())
            .output()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", self.bin.display()));
        Finished {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `agentwire token --sub SUB --org ORG --ttl 1h`, signed with `secret`.
    ///
    /// # Panics
    /// When the command fails; the message carries its stderr.
    pub fn token(&self, sub: &str, org: &str, secret: &str) -> String {
        let out = self.run(
            &["token", "--sub", sub, "--org", org, "--ttl", "1h"],
            &[("AGENTWIRE_JWT_SECRET", secret)],
        );
        assert!(out.success(), "agentwire token failed: {}", out.stderr);
        out.stdout.trim().to_owned()
    }

    /// `agentwire serve --listen 127.0.0.1:0 ARGS...` with these environment variables (and
    /// `RUST_LOG=info` unless they set it); returns once it has logged where it listens.
    ///
    /// # Panics
    /// When the process cannot start, or exits or stays silent for [`START_TIMEOUT`] before
    /// listening; the message carries what it logged.
    pub fn serve(&self, args: &[&str], env: &[(&str, &str)]) -> ServeProcess {
        let mut command = self.command(&["serve", "--listen", "127.0.0.1:0"]);
        command
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut process = ChildProcess::spawn(command);
        let stderr = process
            .child
            .stderr
            .take()
            .expect("stderr is piped just above");
        // Keep reading stderr for the process's whole life, so it never blocks on a full pipe.
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // "WebSocket at ws://ADDR/ws", or wss:// when it serves TLS.
                if let Some(rest) = line
                    .split("ws://")
                    .nth(1)
                    .or_else(|| line.split("wss://").nth(1))
                    && let Some(tx) = tx.take()
                {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(addr.trim_end_matches("/ws").to_owned());
                }
                lock(&lines).push(line);
            }
        });
        let addr = rx
            .recv_timeout(START_TIMEOUT)
            .ok()
            .and_then(|addr| addr.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("serve did not start: {:#?}", lock(&log)));
        ServeProcess { process, addr, log }
    }
}

fn lock(log: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    // A panic while holding the lock cannot leave the lines half-written.
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A child process, killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct ChildProcess {
    pub child: Child,
}

impl ChildProcess {
    /// Starts `command`.
    ///
    /// # Panics
    /// When it cannot be started.
    pub fn spawn(mut command: Command) -> ChildProcess {
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {:?}: {err}", command.get_program()));
        ChildProcess { child }
    }

    /// Sends SIGTERM, as a service manager stopping it would.
    ///
    /// # Panics
    /// When the signal cannot be sent.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(
            status.success(),
            "kill -TERM {}: {status:?}",
            self.child.id()
        );
    }

    /// Waits up to `limit` for the process to exit.
    ///
    /// # Panics
    /// When it is still running after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process with SIGKILL (no drain, no flush, no goodbye) and checks that the
    /// signal is what ended it.
    pub fn kill_9(mut self) {
        self.child.kill().expect("send SIGKILL");
        let exit = self.child.wait().expect("reap the killed child");
        assert_eq!(exit.signal(), Some(9), "{exit:?}");
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `agentwire serve`, where it listens, and everything it has written to stderr.
#[derive(Debug)]
pub struct ServeProcess {
    pub process: ChildProcess,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServeProcess {
    /// `ws://ADDR/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything the process has logged so far, one line each.
    pub fn log_text(&self) -> String {
        lock(&self.log).join("\n")
    }

    /// One HTTP request without a body (blocking).
    pub fn http(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        http_blocking(self.addr, method, path, headers, b"")
    }

    /// Kills the server with SIGKILL; see [`ChildProcess::kill_9`].
    pub fn kill_9(self) {
        self.process.kill_9();
    }
}
