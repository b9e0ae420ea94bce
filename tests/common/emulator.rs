//! A running `danube-hooks emulate` for the black-box tests, and a client
//! of its API over raw sockets.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::{Started, command, exchange};

/// The key the tests send when the emulator takes any.
pub const KEY: &str = "dk_test_any";

/// `danube-hooks emulate --port 0 --state STATE ARGS…`, killed on drop.
pub struct Emulator {
    pub child: Child,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub banner: String,
    pub stderr_lines: mpsc::Receiver<String>,
    pub stdout_lines: mpsc::Receiver<String>,
}

impl Emulator {
    pub fn start(state: &Path, args: &[&str]) -> Self {
        Self::start_with(command(), state, args)
    }

    /// Fails the test if the banner does not come within 10 s.
    pub fn start_with(mut cmd: Command, state: &Path, args: &[&str]) -> Self {
        cmd.args(["emulate", "--port", "0", "--state"])
            .arg(state)
            .args(args);
        // The rest of the banner follows at once; its last line is login's.
        let (started, rest) = Started::spawn(
            cmd,
            "emulate",
            "danube-hooks emulating Danube on http://",
            |line| line.trim_start().starts_with("login:"),
            Duration::from_secs(2),
        );
        let addr: SocketAddr = rest.trim().parse().unwrap();
        let Started {
            child,
            stdout_lines,
            stderr_lines,
            banner,
        } = started;
        Self {
            child,
            addr,
            url: format!("http://{addr}"),
            banner,
            stderr_lines,
            stdout_lines,
        }
    }

    /// One request with `key` as `danube-api-key` (none when `None`), a
    /// JSON body when given; the status and the parsed JSON answer.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut headers = Vec::new();
        if let Some(key) = key {
            headers.push(("danube-api-key", key));
        }
        self.call_with(method, path, &headers, body.map(str::as_bytes))
    }

    /// [`Emulator::call`] with any headers and raw body bytes.
    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> (u16, Value) {
        let reply = exchange(
            self.addr,
            &request(method, path, headers, body),
            Duration::from_secs(10),
        );
        let status = reply.status();
        let body = reply.body();
        let value = serde_json::from_slice(body).unwrap_or_else(|err| {
            panic!(
                "{method} {path}: answer {status} is not JSON ({err}): {}",
                String::from_utf8_lossy(body)
            )
        });
        (status, value)
    }

    /// Create a webhook; its JSON answer (status 200 checked).
    pub fn create(&self, url: &str, events: &[&str]) -> Value {
        let body = serde_json::json!({ "url": url, "events": events }).to_string();
        let (status, answer) = self.call("POST", "/v1/webhooks", Some(KEY), Some(&body));
        assert_eq!(status, 200, "create {url}: {answer}");
        answer
    }

    /// SIGTERM (or another signal), and the exit code.
    pub fn signal_and_wait(&mut self, signal: &str) -> Option<i32> {
        super::signal_and_wait(&mut self.child, "emulate", signal)
    }

    /// Everything the emulator printed, for a failure's message.
    pub fn output(&self) -> String {
        let mut text = format!("--- emulate {} banner:\n{}", self.url, self.banner);
        text.push_str("--- later stderr:\n");
        while let Ok(line) = self.stderr_lines.recv_timeout(Duration::from_millis(50)) {
            text.push_str(&line);
            text.push('\n');
        }
        text.push_str("--- stdout:\n");
        while let Ok(line) = self.stdout_lines.recv_timeout(Duration::from_millis(50)) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    }

    /// The next stdout line (an attempt), within `wait`.
    pub fn next_line(&self, wait: Duration) -> Option<String> {
        self.stdout_lines.recv_timeout(wait).ok()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request as raw bytes: `METHOD path`, the headers given, and a body
/// with its Content-Length when given.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = write!(
        out,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    if let Some(body) = body {
        let _ = write!(
            out,
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.unwrap_or_default());
    out
}
