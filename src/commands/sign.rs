//! `danube-hooks sign`: the header value Danube would send for a body.

use crate::cli::SignArgs;
use crate::commands::{Outcome, unix_now};
use crate::signature;

pub(crate) fn run(args: &SignArgs) -> anyhow::Result<Outcome> {
    let secrets = args.secret.required("sign")?;
    let body = args.body.read()?;
    let t = args.timestamp.unwrap_or_else(unix_now);
    // With several secrets (rotation) the first one signs, as Danube signs
    // with the current secret only.
    crate::commands::out_line(&signature::sign(&secrets[0], t, &body))?;
    Ok(Outcome::Success)
}
