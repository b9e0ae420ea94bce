//! A private PostgreSQL for the tests: `initdb` in a temporary folder, run
//! as a non-root user (as root, `nobody`), listening on a free loopback port
//! only, with password authentication (SCRAM), killed when the test process
//! ends (the postmaster gets SIGKILL when the thread that started it dies).
//!
//! The tests that need it are `#[ignore]`d with [`NEEDS_POSTGRES`], so a
//! plain `cargo test` on a machine without PostgreSQL says `ignored` rather
//! than `ok`; `.ci/run` runs them with `--ignored`, and then a missing
//! PostgreSQL fails them, naming what to install. Where
//! `DANUBE_HOOKS_TEST_POSTGRES` names a server (the cluster `.ci/postgres`
//! starts for CI; its password in `PGPASSWORD`), [`shared`] uses it.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The reason the PostgreSQL tests give when ignored.
pub const NEEDS_POSTGRES: &str = "needs PostgreSQL (initdb on PATH or in /usr/lib/postgresql/*/bin; \
     `apt-get install postgresql`): cargo test -- --ignored";

/// The user the tests connect as.
pub const USER: &str = "danube";

/// A running cluster the tests may use.
pub struct Cluster {
    pub port: u16,
    pub password: String,
    /// `None` for a server this process did not start.
    own: Option<Own>,
}

struct Own {
    dir: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
    /// More `-c NAME=VALUE` settings for the server ([`Cluster::use_tls`]).
    settings: Vec<String>,
}

/// The cluster every PostgreSQL test shares (each in a database of its
/// own, from [`Cluster::database`]); started on first use.
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| {
        if let Some(cluster) = from_environment() {
            return cluster;
        }
        // Started from a thread that never ends: the postmaster's
        // parent-death signal follows the thread that forked it, and the
        // shared cluster must outlive the test that happened to start it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            tx.send(Cluster::start()).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().unwrap().unwrap_or_else(|err| panic!("{err}"))
    })
}

fn from_environment() -> Option<Cluster> {
    let url = std::env::var("DANUBE_HOOKS_TEST_POSTGRES").ok()?;
    let port = url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next()?.parse().ok())
        .unwrap_or_else(|| panic!("DANUBE_HOOKS_TEST_POSTGRES={url}: no :PORT/"));
    Some(Cluster {
        port,
        password: std::env::var("PGPASSWORD").unwrap_or_default(),
        own: None,
    })
}

/// Where PostgreSQL's programs are: on PATH (`/usr/local/bin` here), else
/// Debian's versioned folder, newest first.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            // Followed to where the links point: /usr/local/bin may hold
            // links to initdb and postgres alone, psql beside them there.
            if let Ok(initdb) = std::fs::canonicalize(dir.join("initdb"))
                && let Some(bin) = initdb.parent()
                && bin.join("postgres").is_file()
            {
                return Some(bin.to_path_buf());
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// As root, the programs run as `nobody` (initdb refuses root).
fn as_server_user(cmd: &mut Command) -> &mut Command {
    if nix_is_root() {
        cmd.uid(65534).gid(65534);
    }
    cmd
}

fn nix_is_root() -> bool {
    // The owner of /proc/self is this process's user.
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

impl Cluster {
    /// A handle to a server this process did not start.
    pub fn detached() -> Cluster {
        Cluster {
            port: 0,
            password: String::new(),
            own: None,
        }
    }

    /// A new private cluster (for a test that stops and starts its server).
    pub fn start() -> Result<Cluster, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let bin = bin_dir().ok_or_else(|| format!("no PostgreSQL here: {NEEDS_POSTGRES}"))?;
        remove_stale();
        let dir = std::env::temp_dir().join(format!(
            "danube-hooks-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let password = format!("pw-{}-{}", std::process::id(), free_port());
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, &password).unwrap();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        if nix_is_root() {
            for path in [&dir, &data, &pwfile] {
                std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap();
            }
        }
        let initdb = as_server_user(
            Command::new(bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    USER,
                    "--auth=scram-sha-256",
                    "--no-sync",
                    "--no-instructions",
                ])
                .arg(format!("--pwfile={}", pwfile.display()))
                .current_dir(&dir),
        )
        .output()
        .map_err(|e| format!("initdb did not run: {e}"))?;
        if !initdb.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&initdb.stderr)
            ));
        }
        let mut cluster = Cluster {
            port: free_port(),
            password,
            own: Some(Own {
                dir,
                bin,
                child: None,
                settings: Vec::new(),
            }),
        };
        cluster.start_server()?;
        Ok(cluster)
    }

    /// Start (or start again) this process's server on its port.
    pub fn start_server(&mut self) -> Result<(), String> {
        let port = self.port;
        let own = self.own.as_mut().expect("a cluster this process started");
        let mut cmd = Command::new(own.bin.join("postgres"));
        cmd.arg("-D")
            .arg(own.dir.join("data"))
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "max_connections=200"])
            // The tests kill processes, not the machine: what the server
            // has, it has, whether or not the disk has it yet.
            .args(["-c", "fsync=off"])
            .args(own.settings.iter().flat_map(|setting| ["-c", setting]))
            .current_dir(&own.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(own.dir.join("server.log")).unwrap());
        as_server_user(&mut cmd);
        let child = ur_taking_me_with_you::spawn_dying_with_parent(cmd)
            .map_err(|e| format!("postgres did not start: {e}"))?;
        own.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.try_sql("postgres", "SELECT 1").is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "postgres did not answer on port {port} within 20 s: {}",
            std::fs::read_to_string(self.own.as_ref().unwrap().dir.join("server.log"))
                .unwrap_or_default()
        ))
    }

    /// Restart this process's server with TLS on (plain TCP still taken),
    /// serving `cert_pem` (a chain, leaf first) with `key_pem`.
    pub fn use_tls(&mut self, cert_pem: &str, key_pem: &str) {
        let own = self.own.as_mut().expect("a cluster this process started");
        let (cert, key) = (own.dir.join("server.crt"), own.dir.join("server.key"));
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        // The server refuses a key that others may read.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        if nix_is_root() {
            for path in [&cert, &key] {
                std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap();
            }
        }
        own.settings = vec![
            "ssl=on".into(),
            format!("ssl_cert_file={}", cert.display()),
            format!("ssl_key_file={}", key.display()),
        ];
        self.stop_server();
        self.start_server()
            .unwrap_or_else(|err| panic!("the server did not start with TLS: {err}"));
    }

    /// Stop this process's server (a fast shutdown: sessions are ended).
    pub fn stop_server(&mut self) {
        let own = self.own.as_mut().expect("a cluster this process started");
        if let Some(mut child) = own.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// `postgres://danube@127.0.0.1:PORT/DB`, no password (it is in
    /// [`Cluster::password`], for `PGPASSWORD`).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// A headless listener (`--no-tui`) storing its deliveries in `db`.
    pub fn listener(&self, db: &str) -> crate::common::Listener {
        crate::common::Listener::start_with(self.command(), &["--no-tui", "--store", &self.url(db)])
    }

    /// A new, empty database, named for the test.
    pub fn database(&self, name: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let db = format!(
            "t_{}_{}_{}",
            name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        self.sql("postgres", &format!("CREATE DATABASE {db}"));
        db
    }

    /// A new database with the shared store's schema as `listen` makes it:
    /// its own migrations, run by a listener started on it and stopped.
    pub fn store(&self, name: &str) -> String {
        let db = self.database(name);
        self.migrate(&db);
        db
    }

    /// Bring `db` to the shared store's schema, as a listener does.
    pub fn migrate(&self, db: &str) {
        let url = self.url(db);
        drop(super::Listener::start_with(
            self.command(),
            &["--no-tui", "--store", &url],
        ));
    }

    /// Run `sql` in `db` with psql; its output, unaligned, tuples only.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        self.try_sql(db, sql)
            .unwrap_or_else(|err| panic!("{sql}: {err}"))
    }

    pub fn try_sql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = self
            .psql(db)
            .args(["-c", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// psql on `db` as the cluster's superuser, unaligned and tuples only,
    /// stopping at the first error.
    pub fn psql(&self, db: &str) -> Command {
        let psql = match &self.own {
            Some(own) => own.bin.join("psql"),
            None => bin_dir().map_or_else(|| PathBuf::from("psql"), |bin| bin.join("psql")),
        };
        let mut cmd = Command::new(psql);
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", USER, "-d", db])
            .env("PGPASSWORD", &self.password)
            .env("PGCONNECT_TIMEOUT", "3");
        cmd
    }

    /// The binary, with this cluster's password in `PGPASSWORD`.
    pub fn command(&self) -> Command {
        let mut cmd = super::command();
        cmd.env("PGPASSWORD", &self.password)
            .env_remove("PGPASSFILE")
            .env_remove("DANUBE_HOOKS_STORE");
        cmd
    }
}

/// The folders of clusters whose test process has ended: the shared one
/// is never dropped (its postmaster dies with the process, its folder
/// stays), so each start clears what earlier runs left.
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|name| name.strip_prefix("danube-hooks-pg-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.own.is_some() {
            self.stop_server();
            let dir: &Path = &self.own.as_ref().unwrap().dir;
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
