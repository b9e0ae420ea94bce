//! Stand-in `cloudflared` and `ngrok` (`tests/tunnels/fake_tunnel.py`) in a
//! folder of their own, put first on `PATH`: they take the real programs'
//! flags, print what those print, serve the metrics or agent API, and
//! relay their public side (https on `localhost:PORT`, with a certificate
//! of a CA made here) to the listener. No test reaches the internet.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use super::TempDir;

pub struct FakeTunnels {
    pub dir: TempDir,
}

impl FakeTunnels {
    pub fn new(name: &str) -> Self {
        let dir = TempDir::new(&format!("tunnel-{name}"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tunnels/fake_tunnel.py");
        for program in ["cloudflared", "ngrok"] {
            std::os::unix::fs::symlink(&script, dir.join(program)).unwrap();
        }
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "danube-hooks test tunnel CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &Issuer::new(ca_params, ca_key))
            .unwrap();
        std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
        Self { dir }
    }

    /// The CA that signed the public side's certificate, for `--cacert`.
    pub fn ca(&self) -> String {
        self.dir.join("ca.pem").display().to_string()
    }

    /// Run `cmd` with the stand-ins first on `PATH`.
    pub fn put_on_path(&self, cmd: &mut Command) {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.dir.0.clone()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).unwrap())
            .env("FAKE_TUNNEL_DIR", &self.dir.0);
    }

    /// Tell the stand-ins started from now on to behave so (see the
    /// script's knobs); `None` takes it back.
    pub fn knob(&self, name: &str, value: Option<&str>) {
        let path = self.dir.join(name);
        match value {
            Some(value) => std::fs::write(path, value).unwrap(),
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// The pids of `program`'s starts so far, oldest first.
    pub fn pids(&self, program: &str) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join(&format!("{program}.pids")))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect()
    }

    /// Wait until `program` has been started `n` times; its pids.
    pub fn wait_starts(&self, program: &str, n: usize, wait: Duration) -> Vec<u32> {
        let deadline = Instant::now() + wait;
        loop {
            let pids = self.pids(program);
            if pids.len() >= n {
                return pids;
            }
            assert!(
                Instant::now() < deadline,
                "{program} was started {} times, not {n}, within {wait:?}",
                pids.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The arguments of `program`'s last start.
    pub fn argv(&self, program: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(&format!("{program}.argv")))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub fn path(&self) -> PathBuf {
        self.dir.0.clone()
    }
}

/// Whether `pid` runs (a zombie waiting to be reaped has ended).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Wait up to `wait` for `pid` to end; whether it did.
pub fn ends_within(pid: u32, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Send `signal` (`KILL`, `TERM`) to `pid`.
pub fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}
