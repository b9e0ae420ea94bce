//! The tunnel programs `listen --tunnel` starts: cloudflared's quick
//! tunnel (no account needed) and the ngrok agent. What each is called
//! with, where it tells its public URL, and how to install it.
//!
//! The public URL is read from what the program itself prints (its pipe,
//! which no other process can write to), never asked of its local
//! server: another local user can read the port from the program's
//! command line and take it first. Each start still gets a metrics server
//! (cloudflared) or agent API (ngrok) of its own, on a loopback port this
//! listener picked, so that two listeners, or a tunnel the user already
//! runs on the default ports, never clash over one; cloudflared's only
//! says when its connection is up.

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use hyper::Uri;

use super::{PublicUrl, Source};
use crate::http::Client;
use crate::http::url_at;

/// A tunnel program `--tunnel` can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Program {
    /// `cloudflared tunnel --url …`: a quick tunnel on trycloudflare.com.
    Cloudflared,
    /// `ngrok http …`: needs the user's ngrok account (its authtoken).
    Ngrok,
}

impl Program {
    /// `--tunnel`'s values.
    pub(crate) const NAMES: [&'static str; 2] = ["cloudflared", "ngrok"];

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "cloudflared" => Some(Self::Cloudflared),
            "ngrok" => Some(Self::Ngrok),
            _ => None,
        }
    }

    /// Its executable's name, as looked for on `PATH`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Cloudflared => "cloudflared",
            Self::Ngrok => "ngrok",
        }
    }

    /// How to get it.
    pub(crate) fn install_hint(self) -> &'static str {
        match self {
            Self::Cloudflared => {
                "install it from https://developers.cloudflare.com/cloudflare-one/connections/\
                 connect-networks/downloads/ (macOS: `brew install cloudflared`; Debian and \
                 Ubuntu: the .deb there), or give its path with --tunnel-bin; no account is needed"
            }
            Self::Ngrok => {
                "install it from https://ngrok.com/download (macOS: `brew install ngrok`), then \
                 `ngrok config add-authtoken TOKEN` with your account's token, or give its path \
                 with --tunnel-bin"
            }
        }
    }

    /// What to try when it gave no URL.
    pub(crate) fn advice(self) -> &'static str {
        match self {
            Self::Cloudflared => {
                "check that this machine reaches Cloudflare (quick tunnels need outbound \
                 port 7844 or 443), try again (trycloudflare.com refuses quick tunnels now and \
                 then), raise --tunnel-timeout, or try --tunnel ngrok"
            }
            Self::Ngrok => {
                "check that ngrok has your authtoken (`ngrok config check`, `ngrok config \
                 add-authtoken TOKEN`) and that no other ngrok session of your account runs (the \
                 free plan allows one), raise --tunnel-timeout, or try --tunnel cloudflared"
            }
        }
    }

    /// The command line of one start, for a listener at `local`.
    pub(crate) fn launch(self, local: SocketAddr) -> std::io::Result<Launch> {
        let control = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), free_loopback_port()?);
        let target = crate::http::reachable_url(local);
        let base = Uri::builder()
            .scheme("http")
            .authority(control.to_string())
            .path_and_query("/")
            .build()
            .map_err(std::io::Error::other)?;
        match self {
            Self::Cloudflared => Ok(Launch {
                program: self,
                args: [
                    "tunnel",
                    "--no-autoupdate",
                    "--metrics",
                    &control.to_string(),
                    "--url",
                    &target,
                ]
                .map(OsString::from)
                .to_vec(),
                control,
                ready: Some(url_at(&base, "/ready").map_err(std::io::Error::other)?),
                _config: None,
            }),
            Self::Ngrok => {
                let config = NgrokConfig::write(control)?;
                let configs: Vec<String> = config
                    .files()
                    .iter()
                    .map(|path| path.display().to_string())
                    .collect();
                let mut args: Vec<OsString> =
                    ["http", &target, "--log", "stdout", "--log-format", "json"]
                        .map(OsString::from)
                        .to_vec();
                // ngrok merges the files given, later over earlier; the
                // user's own (its authtoken) first, then the API address.
                args.push("--config".into());
                args.push(configs.join(",").into());
                Ok(Launch {
                    program: self,
                    args,
                    control,
                    ready: None,
                    _config: Some(config),
                })
            }
        }
    }
}

/// One start of a program: its arguments, and where it says it is ready.
pub(crate) struct Launch {
    pub(crate) program: Program,
    pub(crate) args: Vec<OsString>,
    /// Its metrics server or agent API, on a port picked for this start.
    pub(crate) control: SocketAddr,
    /// Where cloudflared says its connection to the edge is up: its URL is
    /// taken once it is, so the first probe does not race the edge.
    ready: Option<Uri>,
    /// ngrok's config files, removed with this launch.
    _config: Option<NgrokConfig>,
}

impl Launch {
    /// The public URL `announced` names, checked: an https origin.
    pub(crate) fn public_url(&self, announced: &str) -> Result<PublicUrl, String> {
        let origin = super::public_origin(announced, false).map_err(|err| {
            format!(
                "the URL it printed cannot be used: {}",
                crate::display::truncate(&err.to_string(), 300)
            )
        })?;
        Ok(PublicUrl {
            origin,
            source: Source::Started {
                program: self.program,
                control: self.control.to_string(),
            },
        })
    }

    /// Whether its connection is up, where the program says so (only
    /// cloudflared's `/ready`); the answer decides nothing but when.
    pub(crate) async fn ready(&self, client: &Client) -> Result<(), String> {
        match &self.ready {
            Some(ready) => super::get_ready(client, ready)
                .await
                .map_err(|why| format!("its connection is not up yet ({why})")),
            None => Ok(()),
        }
    }
}

impl Program {
    /// The public URL a line of the program's output announces: cloudflared
    /// prints it in a box (`|  https://….trycloudflare.com  |`); ngrok,
    /// with `--log-format json`, logs `{"msg":"started tunnel","url":…}`.
    pub(crate) fn announcement(self) -> super::child::Announcement {
        match self {
            Self::Cloudflared => cloudflared_announces,
            Self::Ngrok => ngrok_announces,
        }
    }
}

fn cloudflared_announces(line: &str) -> Option<String> {
    let boxed = line.split_once('|')?.1.trim_start();
    let url = boxed
        .split(|c: char| c.is_whitespace() || c == '|')
        .next()?;
    url.starts_with("https://").then(|| url.to_owned())
}

fn ngrok_announces(line: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Logged {
        msg: String,
        url: Option<String>,
    }
    let logged: Logged = serde_json::from_str(line).ok()?;
    let url = logged.url.filter(|url| url.starts_with("https://"))?;
    (logged.msg == "started tunnel").then_some(url)
}

/// A loopback port free now, for the program to listen on. Another process
/// could take it before the program does: then the program's answer is
/// not where it is asked, or a squatter's is, and the reachability proof
/// (which only this listener can pass) keeps a squatter's URL from being
/// registered.
fn free_loopback_port() -> std::io::Result<u16> {
    let socket = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(socket.local_addr()?.port())
}

/// The config files ngrok is given: the user's own, if there is one (it
/// holds the authtoken), and one of ours, in a private folder, setting the
/// agent API's address (ngrok has no flag for it).
struct NgrokConfig {
    folder: PathBuf,
    theirs: Option<PathBuf>,
}

impl NgrokConfig {
    fn write(control: SocketAddr) -> std::io::Result<Self> {
        use std::io::Write as _;
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        let folder = std::env::temp_dir().join(format!(
            "danube-hooks-ngrok-{}",
            crate::random::random_alnum(12)
        ));
        // A new folder only this user can enter: nothing planted there
        // beforehand can be read as ours.
        std::fs::DirBuilder::new().mode(0o700).create(&folder)?;
        let config = Self {
            theirs: ngrok_default_config(|name| std::env::var_os(name)),
            folder,
        };
        let version = config
            .theirs
            .as_deref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|text| config_version(&text));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(config.ours())?
            .write_all(ngrok_web_addr_config(version, control).as_bytes())?;
        Ok(config)
    }

    fn ours(&self) -> PathBuf {
        self.folder.join("web-addr.yml")
    }

    fn files(&self) -> Vec<PathBuf> {
        self.theirs.iter().cloned().chain([self.ours()]).collect()
    }
}

impl Drop for NgrokConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// Where ngrok keeps its config by default (`ngrok config check` names
/// it): the first of these that exists.
fn ngrok_default_config(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let home = env("HOME").map(PathBuf::from);
    let xdg = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|path| path.is_absolute());
    let candidates = [
        xdg.map(|dir| dir.join("ngrok/ngrok.yml")),
        home.as_ref()
            .map(|home| home.join(".config/ngrok/ngrok.yml")),
        home.as_ref()
            .map(|home| home.join("Library/Application Support/ngrok/ngrok.yml")),
        // The agent before version 3 kept it here.
        home.as_ref().map(|home| home.join(".ngrok2/ngrok.yml")),
    ];
    candidates.into_iter().flatten().find(|path| path.is_file())
}

/// The `version:` of an ngrok config file, if it says one.
fn config_version(text: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix("version:")?.trim();
        value.trim_matches(['"', '\'']).parse().ok()
    })
}

/// Our file, in the form of the user's: version 3 nests the agent's
/// settings under `agent:`; version 2 (every agent since 3.0 reads it)
/// has them at the top.
fn ngrok_web_addr_config(version: Option<u32>, control: SocketAddr) -> String {
    if version == Some(3) {
        format!("version: 3\nagent:\n  web_addr: {control}\n")
    } else {
        format!("version: \"2\"\nweb_addr: {control}\n")
    }
}

/// Whether `path` names a file to run (not a folder): for `--tunnel-bin`
/// and what `PATH` gives.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The executable to run: `--tunnel-bin`, else the program's name on
/// `PATH`; `None` when there is none.
pub(crate) fn find(
    program: Program,
    given: Option<&Path>,
    path: Option<&std::ffi::OsStr>,
) -> Option<PathBuf> {
    if let Some(given) = given {
        return is_executable(given).then(|| given.to_path_buf());
    }
    std::env::split_paths(path?)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program.name()))
        .find(|candidate| is_executable(candidate))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// What the real programs print (cloudflared 2024.x, ngrok 3.x).
    #[test]
    fn the_url_is_read_from_what_the_program_prints() {
        let cloudflared = Program::Cloudflared.announcement();
        let table = [
            (
                "2026-12-06T12:00:01Z INF |  https://tall-river-1234.trycloudflare.com                \
                 |",
                Some("https://tall-river-1234.trycloudflare.com"),
            ),
            (
                "2026-12-06T12:00:01Z INF |  Your quick Tunnel has been created! Visit it at (it may \
                 take some time to be reachable):  |",
                None,
            ),
            (
                "2026-12-06T12:00:01Z INF +------------------------------------------------------+",
                None,
            ),
            (
                "2026-12-06T12:00:00Z INF Requesting new quick Tunnel on trycloudflare.com...",
                None,
            ),
            ("http://plain.example | x", None),
        ];
        for (line, want) in table {
            assert_eq!(cloudflared(line).as_deref(), want, "{line}");
        }
        let ngrok = Program::Ngrok.announcement();
        let started = r#"{"addr":"http://127.0.0.1:4000","lvl":"info","msg":"started tunnel","name":"command_line","obj":"tunnels","t":"2026-12-06T12:00:01Z","url":"https://abcd-1-2-3-4.ngrok-free.app"}"#;
        assert_eq!(
            ngrok(started).as_deref(),
            Some("https://abcd-1-2-3-4.ngrok-free.app")
        );
        for line in [
            r#"{"lvl":"info","msg":"starting web service","addr":"127.0.0.1:4040"}"#,
            r#"{"lvl":"info","msg":"started tunnel","url":"tcp://0.tcp.ngrok.io:1234"}"#,
            r#"{"lvl":"info","msg":"client session established","url":"https://x.ngrok.app"}"#,
            "t=2026 lvl=info msg=\"started tunnel\" url=https://x.ngrok.app",
            "not json",
        ] {
            assert_eq!(ngrok(line), None, "{line}");
        }
    }

    #[test]
    fn names_round_trip() {
        for name in Program::NAMES {
            assert_eq!(Program::from_name(name).unwrap().name(), name);
        }
        assert_eq!(Program::from_name("localtunnel"), None);
    }

    #[test]
    fn cloudflared_gets_a_quick_tunnel_to_this_listener_and_metrics_of_its_own() {
        let local: SocketAddr = "0.0.0.0:4000".parse().unwrap();
        let launch = Program::Cloudflared.launch(local).unwrap();
        let args: Vec<String> = launch
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let control = launch.control.to_string();
        assert_eq!(
            args,
            [
                "tunnel",
                "--no-autoupdate",
                "--metrics",
                control.as_str(),
                "--url",
                "http://127.0.0.1:4000"
            ]
        );
        assert!(launch.control.ip().is_loopback());
        assert!(!(20241..=20245).contains(&launch.control.port()));
        assert_eq!(
            launch.ready.as_ref().unwrap().to_string(),
            format!("http://{control}/ready")
        );
        // Two starts never share an address.
        let again = Program::Cloudflared.launch(local).unwrap();
        assert_ne!(again.control, launch.control);
    }

    #[test]
    fn ngrok_gets_its_api_address_in_a_config_file_of_its_own() {
        let local: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let launch = Program::Ngrok.launch(local).unwrap();
        let args: Vec<String> = launch
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            &args[..6],
            [
                "http",
                "http://127.0.0.1:4000",
                "--log",
                "stdout",
                "--log-format",
                "json"
            ]
        );
        assert_eq!(args[6], "--config");
        let ours = PathBuf::from(args[7].split(',').next_back().unwrap());
        let text = std::fs::read_to_string(&ours).unwrap();
        assert!(
            text.contains(&format!("web_addr: {}", launch.control)),
            "{text}"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&ours), 0o600);
        assert_eq!(mode(ours.parent().unwrap()), 0o700);
        drop(launch);
        assert!(!ours.exists(), "removed with the launch");
    }

    #[test]
    fn our_ngrok_file_follows_the_users_config_version() {
        let control: SocketAddr = "127.0.0.1:41000".parse().unwrap();
        assert_eq!(config_version("authtoken: x\nversion: \"2\"\n"), Some(2));
        assert_eq!(
            config_version("version: 3\nagent:\n  authtoken: x\n"),
            Some(3)
        );
        assert_eq!(config_version("authtoken: x\n"), None);
        assert_eq!(
            ngrok_web_addr_config(Some(3), control),
            "version: 3\nagent:\n  web_addr: 127.0.0.1:41000\n"
        );
        for version in [None, Some(2)] {
            assert_eq!(
                ngrok_web_addr_config(version, control),
                "version: \"2\"\nweb_addr: 127.0.0.1:41000\n"
            );
        }
    }

    #[test]
    fn the_users_ngrok_config_is_found_where_ngrok_keeps_it() {
        let home =
            std::env::temp_dir().join(format!("danube-hooks-ngrok-home-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let env = |home: &Path| {
            let home = home.as_os_str().to_owned();
            move |name: &str| (name == "HOME").then(|| home.clone())
        };
        assert_eq!(ngrok_default_config(env(&home)), None);
        let legacy = home.join(".ngrok2/ngrok.yml");
        std::fs::create_dir_all(legacy.parent().unwrap()).unwrap();
        std::fs::write(&legacy, "authtoken: x\n").unwrap();
        assert_eq!(ngrok_default_config(env(&home)), Some(legacy));
        let current = home.join(".config/ngrok/ngrok.yml");
        std::fs::create_dir_all(current.parent().unwrap()).unwrap();
        std::fs::write(&current, "version: 3\n").unwrap();
        assert_eq!(ngrok_default_config(env(&home)), Some(current));
        let _ = std::fs::remove_dir_all(&home);
    }

    #[test]
    fn the_program_is_found_on_path_or_where_given() {
        let dir = std::env::temp_dir().join(format!("danube-hooks-find-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("cloudflared-folder")).unwrap();
        let path = std::env::join_paths([dir.join("nothing-here"), dir.clone()]).unwrap();
        assert_eq!(find(Program::Cloudflared, None, Some(&path)), None);
        let bin = dir.join("cloudflared");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        assert_eq!(
            find(Program::Cloudflared, None, Some(&path)),
            None,
            "not executable"
        );
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            find(Program::Cloudflared, None, Some(&path)),
            Some(bin.clone())
        );
        assert_eq!(find(Program::Ngrok, None, Some(&path)), None);
        assert_eq!(find(Program::Ngrok, Some(&bin), None), Some(bin.clone()));
        assert_eq!(
            find(Program::Ngrok, Some(&dir.join("cloudflared-folder")), None),
            None
        );
        // A relative entry of PATH is never searched.
        assert_eq!(
            find(Program::Cloudflared, None, Some("relative".as_ref())),
            None
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
