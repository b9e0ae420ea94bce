//! `danube-hooks emulate` attacked from this machine (SPEC §13): a local
//! process without the key, a web page that reached it through DNS
//! rebinding, a flood of payloads built to cost memory, connections that
//! hold every slot, and a key that `ps` would show. Each test asserts what
//! must not happen.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::emulator::{Emulator, KEY, request};
use crate::common::{
    Capture, Reply, TempDir, closed_port, command, exchange, nested_json, proc_status_kib,
    read_reply, run_command, stderr,
};

const WAIT: Duration = Duration::from_secs(10);

/// The emulator's memory bound under any load (SPEC §13).
const MEMORY_BOUND_KIB: u64 = 256 * 1024;

/// A raw request with `Host: host` instead of the emulator's address.
fn with_host(method: &str, path: &str, host: &str, body: Option<&[u8]>) -> Vec<u8> {
    let bytes = request(method, path, &[("danube-api-key", KEY)], body);
    let text = String::from_utf8(bytes).unwrap();
    text.replacen("Host: 127.0.0.1\r\n", &format!("Host: {host}\r\n"), 1)
        .into_bytes()
}

fn detail(reply: &Reply) -> String {
    let answer: Value = serde_json::from_slice(reply.body())
        .unwrap_or_else(|err| panic!("not JSON ({err}): {reply:?}"));
    answer["detail"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn an_event_without_a_key_is_refused_and_fires_nothing() {
    let dir = TempDir::new("emu-events-key");
    let receiver = Capture::start();
    let emulator = Emulator::start(&dir.join("state.json"), &["--allow-http"]);
    emulator.create(&receiver.url("/hook"), &["workflow.failed"]);
    let event = r#"{"event": "workflow.failed", "data": {"by": "a stranger"}}"#;
    for headers in [
        vec![],
        vec![("danube-api-key", "")],
        vec![("Authorization", "Bearer ")],
        vec![("Authorization", "Basic ZGtfdGVzdA==")],
    ] {
        let (status, answer) = emulator.call_with(
            "POST",
            "/v1/emulator/events",
            &headers,
            Some(event.as_bytes()),
        );
        assert_eq!(status, 401, "{headers:?}: {answer}");
        assert!(
            answer["detail"]
                .as_str()
                .unwrap()
                .contains("Missing API key"),
            "{answer}"
        );
    }
    receiver.assert_untouched("a key-less event");
    // With a key (any, without --api-key) it is delivered as before.
    let (status, answer) = emulator.call("POST", "/v1/emulator/events", Some(KEY), Some(event));
    assert_eq!(status, 202, "{answer}");
    assert!(
        receiver.next_request(WAIT).is_some(),
        "delivered with a key"
    );
}

/// What a page on `evil.example`, rebound to 127.0.0.1, sends: the name it
/// was loaded from as `Host`. It must read nothing and fire nothing.
#[test]
fn a_page_on_another_name_cannot_read_or_drive_the_emulator() {
    let dir = TempDir::new("emu-host");
    let receiver = Capture::start();
    let emulator = Emulator::start(&dir.join("state.json"), &["--allow-http"]);
    let hook = emulator.create(&receiver.url("/private-hook"), &["workflow.failed"]);
    let id = hook["id"].as_str().unwrap();
    let event = br#"{"event": "workflow.failed", "data": {"account": "acct_private_42"}}"#;
    let (status, _) = emulator.call_with(
        "POST",
        "/v1/emulator/events",
        &[("danube-api-key", KEY)],
        Some(event),
    );
    assert_eq!(status, 202);
    assert!(receiver.next_request(WAIT).is_some());
    let port = emulator.addr.port();
    let deliveries = format!("/v1/webhooks/{id}/deliveries");
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_owned(),
        format!("127.0.0.1.evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("EVIL.example:{port}"),
        "169.254.169.254".to_owned(),
        format!("10.0.0.1:{port}"),
    ] {
        for (method, path, body) in [
            ("GET", "/v1/webhooks", None),
            ("GET", deliveries.as_str(), None),
            ("GET", &format!("/v1/webhooks/{id}"), None),
            ("POST", "/v1/emulator/events", Some(&event[..])),
            ("POST", "/v1/auth/device/code", Some(&b"{}"[..])),
        ] {
            let reply = exchange(emulator.addr, &with_host(method, path, &host, body), WAIT);
            let status = reply.status();
            assert!(
                status == 421 || status == 403,
                "{method} {path} with Host {host}: {reply:?}"
            );
            let text = String::from_utf8_lossy(reply.body());
            for private in ["private-hook", "acct_private_42", "whsec_", id] {
                assert!(!text.contains(private), "{host} read {private}: {text}");
            }
            let detail = detail(&reply);
            assert!(
                detail.contains("Host") && detail.contains("localhost"),
                "the refusal says why and what is allowed: {detail}"
            );
        }
    }
    // An absolute request target names the host too.
    let absolute = request(
        "GET",
        &format!("http://evil.example:{port}/v1/webhooks"),
        &[("danube-api-key", KEY)],
        None,
    );
    let reply = exchange(emulator.addr, &absolute, WAIT);
    assert!(matches!(reply.status(), 421 | 403), "{reply:?}");
    // No Host at all is no browser's, and still not a name of this machine.
    let bare =
        format!("GET /v1/webhooks HTTP/1.1\r\ndanube-api-key: {KEY}\r\nConnection: close\r\n\r\n");
    let reply = exchange(emulator.addr, bare.as_bytes(), WAIT);
    assert!(matches!(reply.status(), 400 | 421), "{reply:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        receiver.next_request(Duration::ZERO).is_none(),
        "a foreign Host fired a delivery"
    );

    // The names of this machine, with or without the port, still work.
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_owned(),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        "localhost".to_owned(),
        format!("app.localhost:{port}"),
    ] {
        let reply = exchange(
            emulator.addr,
            &with_host("GET", "/v1/webhooks", &host, None),
            WAIT,
        );
        assert_eq!(reply.status(), 200, "Host {host}: {reply:?}");
    }
}

/// `[::1]` as a Host is this machine when the emulator listens there.
#[test]
fn the_ipv6_loopback_is_a_name_of_this_machine() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    }
    let dir = TempDir::new("emu-host-v6");
    let emulator = Emulator::start(&dir.join("state.json"), &["--host", "::1"]);
    let port = emulator.addr.port();
    for (host, want) in [
        (format!("[::1]:{port}"), 200),
        ("[::1]".to_owned(), 200),
        (format!("localhost:{port}"), 200),
        (format!("evil.example:{port}"), 421),
    ] {
        let reply = exchange(
            emulator.addr,
            &with_host("GET", "/v1/webhooks", &host, None),
            WAIT,
        );
        assert_eq!(reply.status(), want, "Host {host}: {reply:?}");
    }
}

/// `emulate ARGS…` with `env` and no key in the environment otherwise;
/// fails the test when it does not start.
fn start_with_key_args(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Emulator {
    let mut cmd = command();
    cmd.env_remove("DANUBE_EMULATOR_API_KEY");
    for (name, value) in env {
        cmd.env(name, value);
    }
    Emulator::start_with(cmd, &dir.join("state.json"), args)
}

fn cmdline(emulator: &Emulator) -> String {
    let raw = std::fs::read(format!("/proc/{}/cmdline", emulator.child.id())).unwrap();
    String::from_utf8_lossy(&raw).replace('\0', " ")
}

/// Only `key` opens it; another key and none are 401.
fn assert_only_key(emulator: &Emulator, key: &str) {
    assert_eq!(emulator.call("GET", "/v1/webhooks", Some(key), None).0, 200);
    assert_eq!(emulator.call("GET", "/v1/webhooks", Some(KEY), None).0, 401);
    assert_eq!(emulator.call("GET", "/v1/webhooks", None, None).0, 401);
}

#[test]
fn the_key_comes_from_a_file_or_the_environment_and_never_shows_in_ps() {
    let dir = TempDir::new("emu-key-file");
    let file_key = "dk_emu_from_file_7f3a9c2e51";
    let file = dir.join("key");
    std::fs::write(&file, format!("\n  {file_key}  \n\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = file.to_str().unwrap();
    let emulator = start_with_key_args(&dir, &["--api-key-file", path], &[]);
    assert_only_key(&emulator, file_key);
    assert!(!cmdline(&emulator).contains(file_key));
    assert!(!emulator.banner.contains(file_key), "{}", emulator.banner);
    assert!(!emulator.banner.contains("warning"), "{}", emulator.banner);
    drop(emulator);

    let env_key = "dk_emu_from_env_0b8d4e6a13";
    let emulator = start_with_key_args(&dir, &[], &[("DANUBE_EMULATOR_API_KEY", env_key)]);
    assert_only_key(&emulator, env_key);
    assert!(!cmdline(&emulator).contains(env_key));
    assert!(!emulator.banner.contains(env_key), "{}", emulator.banner);
    assert!(
        emulator.banner.contains("DANUBE_EMULATOR_API_KEY"),
        "the banner says where the key came from: {}",
        emulator.banner
    );
    drop(emulator);

    // A file others can read still works, with a warning naming it and the fix.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let emulator = start_with_key_args(&dir, &["--api-key-file", path], &[]);
    assert!(
        emulator.banner.contains("warning") && emulator.banner.contains("chmod 600"),
        "{}",
        emulator.banner
    );
    assert!(emulator.banner.contains(path), "{}", emulator.banner);
    assert_only_key(&emulator, file_key);
}

#[test]
fn a_key_file_that_holds_no_key_is_refused_without_its_text() {
    let dir = TempDir::new("emu-key-file-bad");
    for (name, text, why) in [
        ("empty", "\n \n", "no key"),
        ("spaced", "dk_one two_secret_words\n", "spaces"),
    ] {
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut cmd = command();
        cmd.env_remove("DANUBE_EMULATOR_API_KEY")
            .args(["emulate", "--port", "0", "--state"])
            .arg(dir.join("state.json"))
            .arg("--api-key-file")
            .arg(&file);
        let output = run_command(&mut cmd, b"");
        assert_eq!(output.status.code(), Some(2), "{name}: {output:?}");
        let err = stderr(&output);
        assert!(err.contains("--api-key-file") && err.contains(why), "{err}");
        assert!(!err.contains("two_secret_words"), "{err}");
    }
}

/// The emulator's resident set now, and its peak, in KiB.
fn memory(emulator: &Emulator) -> (u64, u64) {
    let pid = emulator.child.id().to_string();
    (
        proc_status_kib(&pid, "VmRSS"),
        proc_status_kib(&pid, "VmHWM"),
    )
}

/// One keep-alive connection to the emulator, for floods that would
/// otherwise leave thousands of sockets in `TIME_WAIT`.
struct Client {
    stream: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Self { stream }
    }

    /// POST an event whose body is `{"event":"workflow.failed","data":DATA}`;
    /// the answer's status.
    fn event(&mut self, data: &[u8]) -> u16 {
        let mut body = br#"{"event":"workflow.failed","data":"#.to_vec();
        body.extend_from_slice(data);
        body.push(b'}');
        let head = format!(
            "POST /v1/emulator/events HTTP/1.1\r\nHost: 127.0.0.1\r\ndanube-api-key: {KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.stream.write_all(head.as_bytes()).unwrap();
        self.stream.write_all(&body).unwrap();
        self.answer()
    }

    /// Read one answer with a Content-Length body; its status.
    fn answer(&mut self) -> u16 {
        let mut received = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            if let Some(end) = crate::common::complete_message(&received) {
                let head = String::from_utf8_lossy(&received[..end]);
                return head.split_whitespace().nth(1).unwrap().parse().unwrap();
            }
            let n = self.stream.read(&mut buf).unwrap();
            assert!(n > 0, "the emulator closed a keep-alive connection");
            received.extend_from_slice(&buf[..n]);
        }
    }
}

/// Watches the emulator's resident set while a flood runs, and stops the
/// test the moment it passes the bound (rather than letting it take the
/// machine's memory).
struct Watch {
    stop: Arc<AtomicBool>,
    over: Arc<Mutex<Option<u64>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    fn start(emulator: &Emulator) -> Self {
        let pid = emulator.child.id();
        let stop = Arc::new(AtomicBool::new(false));
        let over = Arc::new(Mutex::new(None));
        let (stop_in, over_in) = (Arc::clone(&stop), Arc::clone(&over));
        let thread = std::thread::spawn(move || {
            while !stop_in.load(Ordering::Relaxed) {
                let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                    return;
                };
                let rss: u64 = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                    .unwrap_or(0);
                if rss > MEMORY_BOUND_KIB {
                    *over_in.lock().unwrap() = Some(rss);
                    // Stop it here: the assertion below names the figure.
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self {
            stop,
            over,
            thread: Some(thread),
        }
    }

    fn check(&self, what: &str) {
        if let Some(rss) = *self.over.lock().unwrap() {
            panic!("{what}: the emulator reached {} MiB", rss / 1024);
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `threads` clients each sending `count` events of `data`; how many
/// answers had each status.
fn flood(addr: SocketAddr, threads: usize, count: usize, data: &[u8]) -> Vec<u16> {
    let data = Arc::new(data.to_vec());
    let senders: Vec<_> = (0..threads)
        .map(|_| {
            let data = Arc::clone(&data);
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                (0..count)
                    .map(|_| client.event(&data))
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    senders
        .into_iter()
        .flat_map(|sender| sender.join().unwrap_or_default())
        .collect()
}

/// A JSON string of `size` bytes, quotes included.
fn big_string(size: usize) -> Vec<u8> {
    let mut text = vec![b'"'];
    text.extend(std::iter::repeat_n(b'x', size - 2));
    text.push(b'"');
    text
}

/// `[0,0,0,…]` of `size` bytes: a few bytes of JSON per value, far more
/// once parsed into a tree.
fn zeros(size: usize) -> Vec<u8> {
    let mut text = b"[0".to_vec();
    while text.len() + 3 < size {
        text.extend_from_slice(b",0");
    }
    text.push(b']');
    text
}

/// Whatever arrives, the emulator stays under 256 MiB: payloads at the
/// cap by the thousand, arrays that grow when parsed, deep nesting, small
/// events by the thousand, bodies past the cap, and readers of the
/// delivery log that never read. (That many small records reach the
/// budget as large ones do is `emulator::records`' own test.)
#[test]
fn hostile_payloads_leave_the_emulator_under_256_mib() {
    let dir = TempDir::new("emu-memory");
    let emulator = Emulator::start(
        &dir.join("state.json"),
        &["--allow-http", "--backoff", "10ms", "--timeout", "1s"],
    );
    // Four subscribers, refusing connections: every event is four records.
    let ids: Vec<String> = (0..4)
        .map(|_| {
            let url = format!("http://{}/hook", closed_port());
            emulator.create(&url, &["workflow.failed"])["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let (rss_before, _) = memory(&emulator);
    let watch = Watch::start(&emulator);

    // Just under 64 KiB of data per event: the most that is taken.
    let statuses = flood(emulator.addr, 4, 250, &big_string(60 * 1024));
    watch.check("1,000 events of 60 KiB");
    assert!(
        statuses.iter().all(|s| matches!(s, 202 | 503)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&202));
    let statuses = flood(emulator.addr, 4, 100, &zeros(60 * 1024));
    watch.check("400 events of [0,0,…]");
    assert!(
        statuses.iter().all(|s| matches!(s, 202 | 503)),
        "{statuses:?}"
    );
    let statuses = flood(emulator.addr, 4, 100, &nested_json(100, 60 * 1024));
    watch.check("400 events nested 100 deep");
    assert!(
        statuses.iter().all(|s| matches!(s, 202 | 503)),
        "{statuses:?}"
    );
    let statuses = flood(emulator.addr, 4, 500, br#"{"n":1}"#);
    watch.check("2,000 small events");
    assert!(
        statuses.iter().all(|s| matches!(s, 202 | 503)),
        "{statuses:?}"
    );

    // Past the cap: 413, and the detail names the cap.
    let reply = exchange(
        emulator.addr,
        &request(
            "POST",
            "/v1/emulator/events",
            &[("danube-api-key", KEY)],
            Some(
                format!(
                    r#"{{"event":"workflow.failed","data":{}}}"#,
                    String::from_utf8(big_string(100 * 1024)).unwrap()
                )
                .as_bytes(),
            ),
        ),
        WAIT,
    );
    assert_eq!(reply.status(), 413, "{reply:?}");
    assert!(detail(&reply).contains("64 KiB"), "{}", detail(&reply));

    // Readers of the log that never read their answers.
    let mut stalled = Vec::new();
    for n in 0..200 {
        let mut stream = TcpStream::connect(emulator.addr).unwrap();
        let path = format!("/v1/webhooks/{}/deliveries?limit=100", ids[n % ids.len()]);
        let bytes = request("GET", &path, &[("danube-api-key", KEY)], None);
        stream.write_all(&bytes).unwrap();
        stalled.push(stream);
    }
    std::thread::sleep(Duration::from_secs(1));
    watch.check("200 readers that never read");
    drop(stalled);

    // Still serving, with the newest records kept.
    let (status, records) = emulator.call(
        "GET",
        &format!("/v1/webhooks/{}/deliveries?limit=5", ids[0]),
        Some(KEY),
        None,
    );
    assert_eq!(status, 200, "{records}");
    assert_eq!(records.as_array().unwrap().len(), 5);
    assert_eq!(records[0]["payload"]["data"], json!({"n": 1}));
    watch.check("the whole flood");
    drop(watch);
    let (rss, peak) = memory(&emulator);
    eprintln!(
        "emulator memory: {} MiB before, {} MiB after, peak {} MiB",
        rss_before / 1024,
        rss / 1024,
        peak / 1024
    );
    assert!(peak < MEMORY_BOUND_KIB, "peak {} MiB", peak / 1024);
}

/// A receiver that takes every connection and never answers.
fn hanging_receiver() -> SocketAddr {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in server.incoming() {
            held.extend(stream.ok());
        }
    });
    addr
}

/// Events for a receiver that hangs wait their turn within a budget; past
/// it the emulator says 503 and when to come back, rather than holding
/// every event it was sent.
#[test]
fn events_for_a_receiver_that_hangs_wait_within_a_budget() {
    let dir = TempDir::new("emu-queue");
    let emulator = Emulator::start(
        &dir.join("state.json"),
        &["--allow-http", "--timeout", "10s"],
    );
    let url = format!("http://{}/hook", hanging_receiver());
    emulator.create(&url, &["workflow.failed"]);
    let watch = Watch::start(&emulator);
    let mut client = Client::connect(emulator.addr);
    let data = big_string(60 * 1024);
    let refused = (1..=2000).find(|_| client.event(&data) == 503);
    watch.check("events for a receiver that hangs");
    let Some(after) = refused else {
        panic!("2,000 events of 60 KiB for a hanging receiver were all taken");
    };
    assert!(after > 100, "refused after {after} events");
    let body = format!(
        r#"{{"event":"workflow.failed","data":{}}}"#,
        String::from_utf8(data).unwrap()
    );
    let reply = exchange(
        emulator.addr,
        &request(
            "POST",
            "/v1/emulator/events",
            &[("danube-api-key", KEY)],
            Some(body.as_bytes()),
        ),
        WAIT,
    );
    assert_eq!(reply.status(), 503, "{reply:?}");
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert!(
        detail(&reply).contains("at most 16384 KiB"),
        "{}",
        detail(&reply)
    );
    // The rest of the API is there meanwhile.
    assert_eq!(emulator.call("GET", "/v1/webhooks", Some(KEY), None).0, 200);
}

/// Open `n` connections that send nothing.
fn silent_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect()
}

/// Open `n` keep-alive connections that each made one call and then went quiet.
fn idle_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| {
            let mut stream = TcpStream::connect(addr).ok()?;
            let bytes =
                format!("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\ndanube-api-key: {KEY}\r\n\r\n");
            stream.write_all(bytes.as_bytes()).ok()?;
            stream.set_read_timeout(Some(WAIT)).ok()?;
            let mut received = Vec::new();
            let mut buf = [0u8; 4096];
            while crate::common::complete_message(&received).is_none() {
                let n = stream.read(&mut buf).ok()?;
                if n == 0 {
                    return None;
                }
                received.extend_from_slice(&buf[..n]);
            }
            Some(stream)
        })
        .collect()
}

/// A call's answer on a fresh connection, and how long it took.
fn timed_call(addr: SocketAddr) -> (Reply, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(&request(
            "GET",
            "/v1/webhooks",
            &[("danube-api-key", KEY)],
            None,
        ))
        .unwrap();
    let reply = read_reply(&mut stream, WAIT);
    (reply, started.elapsed())
}

#[test]
fn idle_and_silent_connections_give_way_at_the_cap() {
    let dir = TempDir::new("emu-conns");
    let emulator = Emulator::start(&dir.join("state.json"), &[]);
    // More than the cap (512) of each kind, held open.
    let idle = idle_connections(emulator.addr, 300);
    let silent = silent_connections(emulator.addr, 520);
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..3 {
        let (reply, took) = timed_call(emulator.addr);
        assert_eq!(reply.status(), 200, "{reply:?} after {took:?}");
        assert!(took < Duration::from_secs(2), "answered after {took:?}");
    }
    drop((idle, silent));

    // Heads that trickle in give way once past their grace.
    let trickling: Vec<TcpStream> = (0..530)
        .filter_map(|_| {
            let mut stream = TcpStream::connect(emulator.addr).ok()?;
            stream
                .write_all(b"GET /v1/webhooks HTTP/1.1\r\nHost: 127.")
                .ok()?;
            Some(stream)
        })
        .collect();
    let (reply, took) = timed_call(emulator.addr);
    assert_eq!(reply.status(), 200, "{reply:?} after {took:?}");
    assert!(took < Duration::from_secs(6), "answered after {took:?}");
    drop(trickling);
}
