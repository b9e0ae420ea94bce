//! One module per subcommand: each turns validated arguments into output on
//! stdout and an [`Outcome`]. Diagnostics go to stderr.

pub(crate) mod check;
pub(crate) mod completions;
pub(crate) mod dashboard;
pub(crate) mod deliveries;
pub(crate) mod emulate;
pub(crate) mod inspect;
pub(crate) mod listen;
pub(crate) mod login;
pub(crate) mod man;
pub(crate) mod replay;
pub(crate) mod replayer;
pub(crate) mod running;
pub(crate) mod sign;
pub(crate) mod trigger;
pub(crate) mod verify;
pub(crate) mod webhooks;

use crate::errors::wrap::StdoutClosed;

/// How a command ended, short of an error (whose class,
/// [`crate::errors::ErrorClass`], gives its exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: a negative result (`verify` not valid, `check` failures,
    /// `trigger` or `replay` whose last attempt failed).
    Negative,
}

/// Write `text` to stdout whole, and flush it, as the commands' output.
/// A reader that went away (`| head`) is [`StdoutClosed`]: the command
/// ends there, quietly, with 0, where `print!` would panic.
pub(crate) fn out(text: &str) -> anyhow::Result<()> {
    out_bytes(text.as_bytes())
}

/// [`out`], and a newline.
pub(crate) fn out_line(line: &str) -> anyhow::Result<()> {
    out(&format!("{line}\n"))
}

/// [`out`] for bytes.
pub(crate) fn out_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|err| stdout_failed(err, "cannot write to standard output"))
}

/// A failed write to stdout as the error the command ends with: a closed
/// pipe is [`StdoutClosed`]; anything else (a full disk under `>`) is told
/// after `what`, and classed by its kind.
pub(crate) fn stdout_failed(err: std::io::Error, what: &'static str) -> anyhow::Error {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        StdoutClosed.into()
    } else {
        anyhow::Error::new(err).context(what)
    }
}

/// What `--insecure` says, once, wherever the command shows warnings.
pub(crate) const INSECURE_WARNING: &str = "--insecure: https:// certificates are not checked, so anyone on the path can read and \
     answer these requests";

/// The trust `--cacert` and `--insecure` ask for; `--insecure` says so
/// once on stderr.
pub(crate) fn trust(
    tls: &crate::cli::TlsArgs,
) -> Result<crate::http::Trust, crate::cli::UsageError> {
    let trust = tls.trust()?;
    if trust.is_insecure() {
        eprintln!("danube-hooks: warning: {INSECURE_WARNING}");
    }
    Ok(trust)
}

/// Unix seconds now. The one place commands read the clock for signatures.
pub(crate) fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Danube's API as the user is logged in to it: `--api-url` and its own
/// trust (the web's roots and `--api-cacert`), with the credential of
/// `DANUBE_API_KEY`, `DANUBE_API_TOKEN` or `login` (SPEC §11); no
/// credential at all is told when a call needs one.
pub(crate) fn danube_api(args: &crate::cli::ApiArgs) -> anyhow::Result<crate::danube::api::Api> {
    danube_api_at(args.url(), &args.trust()?)
}

/// [`danube_api`] at `url` under `trust`, which must be the API's own
/// ([`crate::cli::ApiArgs::trust`], [`crate::cli::ApiCacertArg::trust`]),
/// never a receiver's.
pub(crate) fn danube_api_at(
    url: &str,
    trust: &crate::http::Trust,
) -> anyhow::Result<crate::danube::api::Api> {
    use crate::danube::{api, credentials};
    let saved = credentials::load(&credentials::config_dir()?)?;
    let credential =
        credentials::Credential::resolve(|name| std::env::var(name).ok(), saved.as_ref());
    Ok(api::Api::new(url, trust, credential)?)
}

/// Rows of cells (each already escaped onto one line) as columns two
/// spaces apart, by display width, one line each without trailing spaces.
pub(crate) fn aligned<R: AsRef<[String]>>(rows: &[R]) -> Vec<String> {
    use unicode_width::UnicodeWidthStr as _;
    let columns = rows.iter().map(|row| row.as_ref().len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|row| row.as_ref().get(i))
                .map(|cell| cell.width())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let row = row.as_ref();
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if i + 1 < row.len() {
                    line.push_str(&" ".repeat(widths[i] - cell.width() + 2));
                }
            }
            line.truncate(line.trim_end().len());
            line
        })
        .collect()
}

/// The runtime a one-shot command's few requests run on.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
