//! `login` and `logout`: get a Danube API key by Danube's device flow (or
//! from standard input with `--with-key`), keep it where
//! `danube::credentials` says, and forget it. The key is never printed
//! whole; what came from the network is escaped before it is shown.

use std::io::Read as _;
use std::time::{Duration, Instant};

use crate::cli::{LoginArgs, LogoutArgs, UsageError};
use crate::commands::Outcome;
use crate::danube::api::{Api, DevicePoll};
use crate::danube::credentials::{self, Saved};
use crate::display::escape_line;

/// The name Danube shows the person approving the login.
const CLIENT_NAME: &str = "danube-hooks";
/// A key on standard input longer than this is not a key.
const MAX_KEY: u64 = 16 * 1024;
/// Bounds on the poll interval Danube asks for: at least 1 s so a bad
/// answer cannot make us spin, at most 60 s so a login is not left hanging.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
const MAX_INTERVAL: Duration = Duration::from_mins(1);
/// A device code is never polled longer than this, whatever `expires_in` says.
const MAX_EXPIRY: Duration = Duration::from_hours(1);

pub(crate) fn login(args: &LoginArgs) -> anyhow::Result<Outcome> {
    let dir = credentials::config_dir()?;
    let saved = if args.with_key {
        key_from_stdin()?
    } else {
        let api = Api::new(args.api.url(), &args.api.trust()?, None)?;
        let runtime = crate::commands::runtime()?;
        match runtime.block_on(device_flow(&api))? {
            Some(saved) => saved,
            None => return Ok(Outcome::Negative),
        }
    };
    let path = credentials::save(&dir, &saved)?;
    crate::commands::out_line(&format!(
        "Logged in: key {} saved to {} (mode 0600).",
        saved.shown(),
        path.display()
    ))?;
    if std::env::var_os("DANUBE_API_KEY").is_some_and(|v| !v.is_empty()) {
        eprintln!(
            "danube-hooks: note: DANUBE_API_KEY is set and is used before the saved key; unset it \
             to use this one"
        );
    }
    Ok(Outcome::Success)
}

pub(crate) fn logout(_args: &LogoutArgs) -> anyhow::Result<Outcome> {
    let dir = credentials::config_dir()?;
    let path = credentials::file_in(&dir);
    if credentials::remove(&dir)? {
        crate::commands::out_line(&format!("Logged out: removed {}.", path.display()))?;
    } else {
        crate::commands::out_line(&format!(
            "Not logged in: there was no saved key at {}.",
            path.display()
        ))?;
    }
    if std::env::var_os("DANUBE_API_KEY").is_some()
        || std::env::var_os("DANUBE_API_TOKEN").is_some()
    {
        eprintln!(
            "danube-hooks: note: DANUBE_API_KEY or DANUBE_API_TOKEN is still set in this shell and \
             still logs in"
        );
    }
    Ok(Outcome::Success)
}

/// A key from standard input, trimmed; empty or with whitespace or control
/// characters inside, it is refused (it could not travel in a header).
fn key_from_stdin() -> Result<Saved, UsageError> {
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_KEY + 1)
        .read_to_string(&mut text)
        .map_err(|err| {
            UsageError::new(format!(
                "cannot read the key from standard input: {err} (give it as one line of text)"
            ))
        })?;
    let key = text.trim();
    if text.len() as u64 > MAX_KEY {
        return Err(UsageError::new(format!(
            "standard input is longer than {MAX_KEY} bytes: that is not an API key; give the key alone"
        )));
    }
    if key.is_empty() {
        return Err(UsageError::new(
            "no key on standard input: pipe the key in, e.g. `danube-hooks login --with-key < danube-key.txt`",
        ));
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UsageError::new(
            "the key on standard input has a space, line break or control character inside; give \
             the key alone, on one line",
        ));
    }
    Ok(Saved {
        api_key: key.to_owned(),
        key_prefix: None,
    })
}

/// Danube's device flow: show where to approve, poll until approved; `None`
/// when the code expired (said on stderr).
async fn device_flow(api: &Api) -> anyhow::Result<Option<Saved>> {
    let code = api.device_code(CLIENT_NAME).await?;
    let expires_in = Duration::from_secs(code.expires_in).min(MAX_EXPIRY);
    let deadline = Instant::now() + expires_in;
    let interval = Duration::from_secs(code.interval).clamp(MIN_INTERVAL, MAX_INTERVAL);
    crate::commands::out_line(&format!(
        "To log in, open {}\nand enter the code {}\n(it expires in {} min; waiting for your approval…)",
        escape_line(&code.verification_url),
        escape_line(&code.user_code),
        expires_in.as_secs().div_ceil(60)
    ))?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(expired());
        }
        tokio::time::sleep(interval.min(left)).await;
        match api.device_token(&code.device_code).await? {
            DevicePoll::Pending => {}
            DevicePoll::Expired => return Ok(expired()),
            DevicePoll::Approved(token) => {
                return Ok(Some(Saved {
                    api_key: token.api_key,
                    key_prefix: token.key_prefix,
                }));
            }
        }
    }
}

fn expired() -> Option<Saved> {
    eprintln!(
        "danube-hooks: the login code expired before it was approved; run `danube-hooks login` \
         again and approve it within the time shown"
    );
    None
}
