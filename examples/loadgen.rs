//! The load tools behind `scripts/bench-load.sh` and `scripts/soak.sh`.
//!
//! - `deliveries`: write N distinct signed Danube deliveries of a given size,
//!   one per line as `<X-Danube-Signature>\t<body>`, for wrk's Lua script.
//! - `run`: a small HTTP/1.1 keep-alive client that signs every delivery as
//!   it sends it (fresh `t`, distinct body), either closed-loop (each
//!   connection sends as fast as it is answered) or open-loop at a fixed
//!   rate, wrk2-style: each request has an intended send time and its
//!   latency is counted from that time, so a server that falls behind is
//!   charged for the queue it causes (no coordinated omission). A worker
//!   always finishes the request it has sent, so "answered" is exact.
//! - `startup`: spawn `danube-hooks listen` N times and time how long until
//!   its port accepts a connection.
//!
//! Not part of the crate's API; run through the scripts.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use danube_hooks::signature::{self, Secret};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Tool,
}

#[derive(Subcommand)]
enum Tool {
    /// Write distinct signed deliveries, one per line: signature TAB body.
    Deliveries {
        #[arg(long)]
        secret: String,
        #[arg(long)]
        count: u64,
        /// Body size in bytes.
        #[arg(long, default_value_t = 1024)]
        size: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Send signed deliveries and report answers and latency.
    Run(RunArgs),
    /// Time from spawning `listen` to its port accepting a connection.
    Startup {
        /// The danube-hooks binary.
        #[arg(long)]
        bin: PathBuf,
        #[arg(long, default_value_t = 20)]
        runs: usize,
        #[arg(long)]
        secret: String,
    },
}

#[derive(Parser, Clone)]
struct RunArgs {
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long)]
    secret: String,
    /// Connections (one worker thread each).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Stop after this many requests.
    #[arg(long)]
    count: Option<u64>,
    /// Stop starting new requests after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Open loop at this many requests per second (latency from the
    /// intended send time); without it, closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Body size in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Tool::Deliveries {
            secret,
            count,
            size,
            out,
        } => write_deliveries(&Secret::new(secret), count, size, &out),
        Tool::Run(args) => run(&args),
        Tool::Startup { bin, runs, secret } => startup(&bin, runs, &secret),
    }
}

/// A Danube-shaped delivery of exactly `size` bytes (when `size` leaves room
/// for the envelope), distinct for each `n`.
fn delivery_body(n: u64, size: usize) -> Vec<u8> {
    let timestamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
    let head = format!(
        r#"{{"event":"tool.execution.completed","timestamp":"{timestamp}","data":{{"tool_id":"bench-{n}","tool_name":"load","status":"success","execution_time":0.5,"error":null,"padding":""#
    );
    let tail = r#""}}"#;
    let mut body = head.into_bytes();
    let padding = size.saturating_sub(body.len() + tail.len());
    body.resize(body.len() + padding, b'x');
    body.extend_from_slice(tail.as_bytes());
    body
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn write_deliveries(
    secret: &Secret,
    count: u64,
    size: usize,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let t = unix_now();
    for n in 0..count {
        let body = delivery_body(n, size);
        let header = signature::sign(secret, t, &body);
        out.write_all(header.as_bytes())?;
        out.write_all(b"\t")?;
        out.write_all(&body)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// What one worker saw.
#[derive(Default)]
struct Tally {
    /// Latency of each answered request, in microseconds.
    latencies_us: Vec<u64>,
    answered_2xx: u64,
    answered_other: u64,
    errors: u64,
    first_error: Option<String>,
}

fn run(args: &RunArgs) -> anyhow::Result<()> {
    if args.count.is_none() && args.duration.is_none() {
        bail!("give --count, --duration or both");
    }
    let secret = Arc::new(Secret::new(args.secret.clone()));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.connections.max(1))
        .map(|_| {
            let args = args.clone();
            let secret = Arc::clone(&secret);
            let next = Arc::clone(&next);
            std::thread::spawn(move || worker(&args, &secret, &next, started))
        })
        .collect();
    let mut total = Tally::default();
    for worker in workers {
        let tally = worker.join().expect("a worker panicked");
        total.latencies_us.extend(tally.latencies_us);
        total.answered_2xx += tally.answered_2xx;
        total.answered_other += tally.answered_other;
        total.errors += tally.errors;
        total.first_error = total.first_error.or(tally.first_error);
    }
    let elapsed = started.elapsed().as_secs_f64();
    total.latencies_us.sort_unstable();
    let answered = total.answered_2xx + total.answered_other;
    let mode = match args.rate {
        Some(rate) => format!("open loop at {rate} req/s, latency from the intended send time"),
        None => format!("closed loop, {} connections", args.connections),
    };
    println!("mode:        {mode}");
    println!("answered:    {answered}");
    println!("answered_2xx: {}", total.answered_2xx);
    println!("answered_other: {}", total.answered_other);
    println!("errors:      {}", total.errors);
    if let Some(error) = &total.first_error {
        println!("first_error: {error}");
    }
    println!("elapsed_s:   {elapsed:.3}");
    println!("req_per_s:   {:.0}", answered as f64 / elapsed);
    for (name, q) in [
        ("p50", 0.50),
        ("p90", 0.90),
        ("p99", 0.99),
        ("p999", 0.999),
        ("max", 1.0),
    ] {
        let ms = percentile(&total.latencies_us, q) as f64 / 1000.0;
        println!("{name}_ms: {ms:.3}");
    }
    Ok(())
}

/// Nearest-rank percentile of sorted values; 0 when there are none.
fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn worker(args: &RunArgs, secret: &Secret, next: &AtomicU64, started: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<TcpStream> = None;
    let deadline = args.duration.map(|s| started + Duration::from_secs_f64(s));
    let interval = args.rate.map(|rate| Duration::from_secs_f64(1.0 / rate));
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if args.count.is_some_and(|count| n >= count) {
            break;
        }
        // In open loop, request n is due at start + n / rate, whenever a
        // worker gets to it; latency counts from then.
        let intended = interval.map(|i| started + i.mul_f64(n as f64));
        if let Some(at) = intended {
            if deadline.is_some_and(|d| at >= d) {
                break;
            }
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let body = delivery_body(n, args.size);
        let header = signature::sign(secret, unix_now(), &body);
        let request = request_bytes(&header, &body);
        let sent = Instant::now();
        let from = intended.unwrap_or(sent);
        match exchange(&mut conn, args.addr, &request) {
            Ok(status) => {
                tally
                    .latencies_us
                    .push(from.elapsed().as_micros().try_into().unwrap_or(u64::MAX));
                if (200..300).contains(&status) {
                    tally.answered_2xx += 1;
                } else {
                    tally.answered_other += 1;
                }
            }
            Err(err) => {
                conn = None;
                tally.errors += 1;
                tally.first_error.get_or_insert_with(|| format!("{err:#}"));
            }
        }
    }
    tally
}

fn request_bytes(header: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST /webhooks/danube HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         User-Agent: danube-hooks-loadgen\r\nX-Danube-Signature: {header}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

/// Send one request on the kept-alive connection (opening one if needed)
/// and read one whole answer; its status.
fn exchange(conn: &mut Option<TcpStream>, addr: SocketAddr, request: &[u8]) -> anyhow::Result<u16> {
    if conn.is_none() {
        let stream = TcpStream::connect(addr).context("connect")?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        *conn = Some(stream);
    }
    let stream = conn.as_mut().expect("opened above");
    stream.write_all(request).context("write")?;
    let mut received = Vec::with_capacity(512);
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).context("read")?;
        if n == 0 {
            bail!("the server closed the connection before a whole answer");
        }
        received.extend_from_slice(&buf[..n]);
        let Some(head_end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("no status in the answer")?;
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(Ok(0), |v| v.trim().parse())
            .context("bad content-length")?;
        if received.len() >= head_end + 4 + length {
            if head.contains("connection: close") {
                *conn = None;
            }
            return Ok(status);
        }
    }
}

fn startup(bin: &std::path::Path, runs: usize, secret: &str) -> anyhow::Result<()> {
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let dir = std::env::temp_dir().join(format!("danube-hooks-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut times = Vec::with_capacity(runs);
    for run in 0..runs {
        // A free port: bind 0, note it, let it go.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let store = dir.join(format!("deliveries-{run}.jsonl"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let spawned = Instant::now();
        let mut child = Command::new(bin)
            .args(["listen", "--json", "--port", &port.to_string()])
            .args(["--secret", secret, "--store"])
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let listening = loop {
            if TcpStream::connect(addr).is_ok() {
                break Some(spawned.elapsed());
            }
            if child.try_wait()?.is_some() || spawned.elapsed() > Duration::from_secs(10) {
                break None;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        let _ = child.kill();
        let _ = child.wait();
        let Some(elapsed) = listening else {
            bail!("run {run}: listen did not accept on port {port} within 10 s");
        };
        println!("run {run:>2}: {:.2} ms", elapsed.as_secs_f64() * 1000.0);
        times.push(elapsed);
    }
    let _ = std::fs::remove_dir_all(&dir);
    times.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mid = times.len() / 2;
    let median = if times.len() % 2 == 0 {
        f64::midpoint(ms(times[mid - 1]), ms(times[mid]))
    } else {
        ms(times[mid])
    };
    println!(
        "startup_median_ms: {median:.2}\nstartup_min_ms: {:.2}\nstartup_max_ms: {:.2}",
        ms(times[0]),
        ms(times[times.len() - 1])
    );
    Ok(())
}
