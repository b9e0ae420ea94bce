//! Helpers shared by the black-box tests: run the real binary.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub mod emulator;
pub mod fake_danube;
pub mod postgres;
pub mod tls;
pub mod tunnel;

pub const BIN: &str = env!("CARGO_BIN_EXE_danube-hooks");
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The binary with a clean environment: no secret leaks in from the shell.
pub fn command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("DANUBE_WEBHOOK_SECRET")
        .env_remove("DANUBE_HOOKS_PORT")
        .env_remove("DANUBE_HOOKS_STORE")
        .env("NO_COLOR", "1");
    cmd
}

/// The binary with its config under `config` and no Danube credential or
/// API URL from the developer's shell: each test gives its own.
pub fn command_with_config(config: &Path) -> Command {
    let mut cmd = command();
    cmd.env("XDG_CONFIG_HOME", config)
        .env_remove("DANUBE_API_KEY")
        .env_remove("DANUBE_API_TOKEN")
        .env_remove("DANUBE_ORG_ID")
        .env_remove("DANUBE_API_URL");
    cmd
}

/// Run with `args`, feeding `stdin`.
pub fn run(args: &[&str], stdin: &[u8]) -> Output {
    run_command(command().args(args), stdin)
}

pub fn run_command(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // A run that stops early (a usage error, say) may exit before it reads
    // its stdin; that is a broken pipe here, not a failure of the test.
    match child.stdin.take().unwrap().write_all(stdin) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            panic!("stdin did not take the body: {err}")
        }
        _ => {}
    }
    child.wait_with_output().expect("the binary finishes")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Panics with both streams when the exit code is not `code`.
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

// ---- A running listener, and a raw HTTP client that sees what a sender sees.

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::{SocketAddr, TcpStream};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A `danube-hooks listen` child process on a free port. Killed on drop.
pub struct Listener {
    pub child: Child,
    pub addr: SocketAddr,
    /// The banner and anything else on stderr, line by line.
    pub stderr_lines: mpsc::Receiver<String>,
    /// Stdout lines (records with `--json`).
    pub stdout_lines: mpsc::Receiver<String>,
    pub banner: String,
}

impl Listener {
    /// Start with `args` after `listen --port 0`. Fails the test if it
    /// does not print its address within 10 s.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with(command(), args)
    }

    pub fn start_with(cmd: Command, args: &[&str]) -> Self {
        Self::start_on(cmd, 0, args)
    }

    /// Start on `port`: for a test whose fake (an ngrok agent, say) must
    /// name the listener's port before it starts.
    pub fn start_on(mut cmd: Command, port: u16, args: &[&str]) -> Self {
        cmd.args(["listen", "--port", &port.to_string()]).args(args);
        // The rest of the banner follows at once.
        let (started, rest) = Started::spawn(
            cmd,
            "listen",
            "danube-hooks listening on http://",
            |line| line.contains("then register"),
            Duration::from_millis(200),
        );
        let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
        let Started {
            child,
            stdout_lines,
            stderr_lines,
            banner,
        } = started;
        Self {
            child,
            addr,
            stderr_lines,
            stdout_lines,
            banner,
        }
    }

    /// The next stdout line, within `timeout`.
    pub fn next_line(&self, timeout: Duration) -> String {
        self.stdout_lines
            .recv_timeout(timeout)
            .unwrap_or_else(|_| panic!("no stdout line within {timeout:?}"))
    }

    /// The next record on stdout (`--json`), parsed.
    pub fn next_record(&self) -> serde_json::Value {
        let line = self.next_line(Duration::from_secs(10));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON record ({e}): {line}"))
    }

    /// Send SIGTERM (or another signal) and wait for the exit code.
    pub fn signal_and_wait(&mut self, signal: &str) -> Option<i32> {
        signal_and_wait(&mut self.child, "listen", signal)
    }

    /// Everything on stderr so far after the banner.
    pub fn stderr_so_far(&self) -> String {
        let mut text = String::new();
        while let Ok(line) = self.stderr_lines.recv_timeout(Duration::from_millis(100)) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child of the binary with its output read line by line, past its banner.
pub struct Started {
    pub child: Child,
    pub stdout_lines: mpsc::Receiver<String>,
    pub stderr_lines: mpsc::Receiver<String>,
    pub banner: String,
}

impl Started {
    /// Spawn `cmd` (running `what`) with stdout and stderr piped; fail the
    /// test unless a stderr line starting with `prefix` comes within 10 s.
    /// The rest of the banner is read until a line `last` accepts, each
    /// line within `rest_wait`. Also returns that line after `prefix`.
    pub fn spawn(
        mut cmd: Command,
        what: &str,
        prefix: &str,
        last: impl Fn(&str) -> bool,
        rest_wait: Duration,
    ) -> (Self, String) {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Killed by the kernel when the test's thread ends, `kill -9` of
        // the test run included, as well as when dropped.
        let mut child = ur_taking_me_with_you::spawn_dying_with_parent(cmd)
            .unwrap_or_else(|err| panic!("{what} starts: {err}"));
        let stdout_lines = lines_of(child.stdout.take().unwrap());
        let stderr_lines = lines_of(child.stderr.take().unwrap());
        let mut banner = String::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let found = loop {
            let line = stderr_lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("no banner from {what}; stderr so far:\n{banner}"));
            banner.push_str(&line);
            banner.push('\n');
            if let Some(rest) = line.strip_prefix(prefix) {
                break rest.to_string();
            }
        };
        while let Ok(line) = stderr_lines.recv_timeout(rest_wait) {
            banner.push_str(&line);
            banner.push('\n');
            if last(&line) {
                break;
            }
        }
        let started = Self {
            child,
            stdout_lines,
            stderr_lines,
            banner,
        };
        (started, found)
    }
}

/// Send `child` (running `what`) SIGTERM or another signal and wait up
/// to 20 s for its exit code.
pub fn signal_and_wait(child: &mut Child, what: &str, signal: &str) -> Option<i32> {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not exit after SIG{signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn lines_of(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// What a sender saw.
#[derive(Debug)]
pub enum Reply {
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// The connection was reset (RST).
    Reset,
    /// Closed cleanly with nothing written.
    Empty,
    /// Bytes that are not an HTTP response, then close.
    NotHttp(Vec<u8>),
    /// Nothing at all within the wait.
    NoAnswer,
    /// Nobody listens (the listener is gone).
    Refused,
}

impl Reply {
    pub fn status(&self) -> u16 {
        match self {
            Self::Http { status, .. } => *status,
            other => panic!("expected an HTTP answer, got {other:?}"),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        match self {
            Self::Http { headers, .. } => headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str()),
            _ => None,
        }
    }

    pub fn body(&self) -> &[u8] {
        match self {
            Self::Http { body, .. } => body,
            other => panic!("expected an HTTP answer, got {other:?}"),
        }
    }
}

/// A request as raw bytes: `POST path`, the headers given, Content-Length.
pub fn request_bytes(path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    let _ = write!(head, "Content-Length: {}\r\n\r\n", body.len());
    [head.as_bytes(), body].concat()
}

/// Send raw bytes on a fresh connection and read what comes back, waiting
/// at most `wait` for the whole answer.
pub fn exchange(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Reply {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return Reply::Refused;
    };
    if stream.write_all(bytes).is_err() {
        return Reply::Reset;
    }
    read_reply(&mut stream, wait)
}

pub fn read_reply(stream: &mut TcpStream, wait: Duration) -> Reply {
    let deadline = Instant::now() + wait;
    let mut received = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return if received.is_empty() {
                Reply::NoAnswer
            } else {
                parse_reply(received)
            };
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => {
                return if received.is_empty() {
                    Reply::Empty
                } else {
                    parse_reply(received)
                };
            }
            Ok(n) => {
                received.extend_from_slice(&buf[..n]);
                if let Some(complete) = complete_message(&received) {
                    return parse_reply(received[..complete].to_vec());
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                return Reply::Reset;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return if received.is_empty() {
                    Reply::NoAnswer
                } else {
                    parse_reply(received)
                };
            }
            Err(e) => panic!("reading the answer failed: {e}"),
        }
    }
}

/// The length of a whole message (head and a Content-Length or chunked
/// body), once it has all arrived.
pub fn complete_message(bytes: &[u8]) -> Option<usize> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
    if is_chunked(&head) {
        return dechunk(&bytes[head_end..]).map(|(_, used)| head_end + used);
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap_or(0));
    (bytes.len() >= head_end + length).then_some(head_end + length)
}

/// A head (lowercased) that says its body is chunked.
fn is_chunked(head: &str) -> bool {
    head.lines()
        .find_map(|l| l.strip_prefix("transfer-encoding:"))
        .is_some_and(|v| v.contains("chunked"))
}

/// A chunked body decoded, and the bytes it took, once its last chunk
/// (and the empty trailer) has arrived.
pub fn dechunk(bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = at + bytes[at..].windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&bytes[at..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // No trailers from the servers under test: the closing CRLF.
            return (bytes.len() >= at + 2).then_some((body, at + 2));
        }
        if bytes.len() < at + size + 2 {
            return None;
        }
        body.extend_from_slice(&bytes[at..at + size]);
        at += size + 2;
    }
}

/// The records of the store at `path`, oldest first, as their lines were
/// written (a mirror's later answer, a line of its own, left out); none
/// where there is no store yet.
pub fn store_records(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.starts_with("{\"mirror_of\":"))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The ids of JSON records, one a line (`log --json`'s output, a store).
pub fn ids_of_lines(text: &str) -> Vec<u64> {
    text.lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// Read one request (head and Content-Length body) as a receiver would;
/// what arrived if the client stops early.
pub fn read_request(stream: &mut TcpStream, wait: Duration) -> Vec<u8> {
    let _ = stream.set_read_timeout(Some(wait));
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if complete_message(&seen).is_some() {
            break;
        }
    }
    seen
}

fn parse_reply(bytes: Vec<u8>) -> Reply {
    if !bytes.starts_with(b"HTTP/1.") {
        return Reply::NotHttp(bytes);
    }
    let Some(head_end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Reply::NotHttp(bytes);
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let raw = &bytes[head_end + 4..];
    let body = if is_chunked(&head.to_ascii_lowercase()) {
        dechunk(raw).map_or_else(|| raw.to_vec(), |(body, _)| body)
    } else {
        raw.to_vec()
    };
    Reply::Http {
        status,
        headers,
        body,
    }
}

/// POST a body signed with `secret` at `t` (unix seconds).
pub fn signed_post(addr: SocketAddr, secret: &str, t: i64, body: &[u8]) -> Reply {
    let header =
        danube_hooks::signature::sign(&danube_hooks::signature::Secret::new(secret), t, body);
    exchange(
        addr,
        &request_bytes(
            "/webhooks/danube",
            &[
                ("Content-Type", "application/json"),
                ("X-Danube-Signature", &header),
            ],
            body,
        ),
        Duration::from_secs(10),
    )
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let unique = format!(
            "danube-hooks-test-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

/// A child process killed (and reaped) when dropped, so that a test that
/// fails midway leaves no process behind.
pub struct KillOnDrop(pub std::process::Child);

impl KillOnDrop {
    /// Start `cmd`, to be killed when dropped, and by the kernel when the
    /// thread that started it ends (the test's, `kill -9` of the test run
    /// included).
    pub fn spawn(cmd: Command) -> KillOnDrop {
        KillOnDrop(
            ur_taking_me_with_you::spawn_dying_with_parent(cmd)
                .unwrap_or_else(|err| panic!("the child starts: {err}")),
        )
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A body for event `event` that differs per `n`.
pub fn event_body(event: &str, n: u64) -> Vec<u8> {
    format!(r#"{{"event":"{event}","timestamp":"2026-11-23T09:14:07.{n:06}Z","data":{{"n":{n}}}}}"#)
        .into_bytes()
}

/// The `X-Danube-Signature` value a stored record arrived with.
pub fn signature_header(record: &serde_json::Value) -> serde_json::Value {
    record["headers"]
        .as_array()
        .expect("a record has headers")
        .iter()
        .find(|h| h[0] == "x-danube-signature")
        .expect("the record arrived signed")[1]
        .clone()
}

// ---- A server that records every request it gets (the attacks).

/// An HTTP server on a free loopback port that answers every request `200`
/// (or the status of [`Capture::answering`]; empty body) and keeps the exact bytes of each, one connection at a
/// time, a request per connection. Used as a receiver to inspect, and as a
/// place that must see nothing: it counts connections, even silent ones.
pub struct Capture {
    pub addr: SocketAddr,
    requests: mpsc::Receiver<Vec<u8>>,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Capture {
    pub fn start() -> Self {
        Self::answering(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    }

    /// A capture that answers every request `status` (a failing receiver).
    pub fn answering_status(status: u16) -> Self {
        Self::answering(
            format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    }

    /// As [`Capture::start`], answering each request with the whole HTTP
    /// message `answer` instead.
    pub fn answering(answer: &[u8]) -> Self {
        let answer = answer.to_vec();
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let (tx, requests) = mpsc::channel();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&connections);
        std::thread::spawn(move || {
            for stream in server.incoming() {
                let Ok(mut stream) = stream else { continue };
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let request = read_request(&mut stream, Duration::from_secs(10));
                let _ = stream.write_all(&answer);
                if tx.send(request).is_err() {
                    break;
                }
            }
        });
        Self {
            addr,
            requests,
            connections,
        }
    }

    /// `http://addr` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The next request's bytes, within `wait`.
    pub fn next_request(&self, wait: Duration) -> Option<Vec<u8>> {
        self.requests.recv_timeout(wait).ok()
    }

    /// Fails the test if anything connected, naming `what`.
    pub fn assert_untouched(&self, what: &str) {
        // A connection in flight is given a moment to land.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            self.connections(),
            0,
            "{what}: a stranger's target reached a server the user never named: {:?}",
            self.requests
                .try_iter()
                .map(|r| String::from_utf8_lossy(&r).into_owned())
                .collect::<Vec<_>>()
        );
    }
}

/// A request as it arrived: request line, headers with exact value bytes,
/// body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrived {
    pub method: String,
    pub target: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Arrived {
    pub fn parse(bytes: &[u8]) -> Self {
        let head_end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no whole head: {:?}", String::from_utf8_lossy(bytes)));
        let mut lines = bytes[..head_end]
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let request_line = lines.next().unwrap();
        let mut parts = request_line.split(|&b| b == b' ');
        let method = String::from_utf8_lossy(parts.next().unwrap()).into_owned();
        let target = parts.next().unwrap().to_vec();
        let headers = lines
            .map(|line| {
                let colon = line.iter().position(|&b| b == b':').unwrap();
                let value = &line[colon + 1..];
                let start = value
                    .iter()
                    .position(|&b| b != b' ' && b != b'\t')
                    .unwrap_or(value.len());
                (
                    String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase(),
                    value[start..].to_vec(),
                )
            })
            .collect();
        Self {
            method,
            target,
            headers,
            body: bytes[head_end + 4..].to_vec(),
        }
    }
}

/// The headers of a stored record (`--json` or the store) with the exact
/// bytes of each value: `raw_headers` where the record has them.
pub fn record_header_bytes(record: &serde_json::Value) -> Vec<(String, Vec<u8>)> {
    use base64::Engine as _;
    let raw: std::collections::HashMap<u64, Vec<u8>> = record["raw_headers"]
        .as_array()
        .map(|raw| {
            raw.iter()
                .map(|r| {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(r["value_b64"].as_str().unwrap())
                        .unwrap();
                    (r["index"].as_u64().unwrap(), bytes)
                })
                .collect()
        })
        .unwrap_or_default();
    record["headers"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let name = h[0].as_str().unwrap().to_ascii_lowercase();
            let value = raw
                .get(&(i as u64))
                .cloned()
                .unwrap_or_else(|| h[1].as_str().unwrap().as_bytes().to_vec());
            (name, value)
        })
        .collect()
}

/// The body of a stored record.
pub fn record_body(record: &serde_json::Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(record["body_b64"].as_str().unwrap())
        .unwrap()
}

/// A POST with these exact header bytes (not only text), from a sender
/// whose `Host` names somewhere else.
pub fn raw_request(path: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut bytes =
        format!("POST {path} HTTP/1.1\r\nHost: evil.example:1\r\nConnection: close\r\n")
            .into_bytes();
    for (name, value) in headers {
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// A field of `/proc/PID/status` in KiB (`VmHWM`, the peak resident set;
/// `VmRSS`, the resident set now); `pid` may be `self`.
pub fn proc_status_kib(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc is there");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// `depth` levels of JSON arrays around `1,1,1,…`, `size` bytes in all:
/// the costliest shape for anything that parses or re-indents a body.
pub fn nested_json(depth: usize, size: usize) -> Vec<u8> {
    let mut body = "[".repeat(depth).into_bytes();
    while body.len() + depth + 2 < size {
        body.extend_from_slice(b"1,");
    }
    body.push(b'1');
    body.extend(std::iter::repeat_n(b']', depth));
    body
}

/// POST `body` with a well-formed signature made with the wrong key: a
/// mismatch for the forensics to explain.
pub fn mis_signed_post(addr: SocketAddr, body: &[u8]) -> Reply {
    signed_post(addr, "whsec_notthesecretatallnotthesecret", now(), body)
}

/// A loopback address nothing listens on: bound, then let go at once.
pub fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A `200` whole HTTP answer carrying `json`, for [`Capture::answering`].
pub fn json_answer(json: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    )
    .into_bytes()
}

/// Fails the test unless `text` (a command's stdout or stderr) holds
/// `needle`, printing `text` whole.
#[track_caller]
pub fn assert_contains(text: &str, needle: &str) {
    assert!(text.contains(needle), "{text}");
}

/// Danube's five event types, as the issue names them: what a webhook
/// gets unless told otherwise.
pub const ALL_EVENTS: [&str; 5] = [
    "tool.execution.completed",
    "tool.execution.failed",
    "workflow.completed",
    "workflow.failed",
    "agent.spend.limit_approaching",
];
