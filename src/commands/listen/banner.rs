//! What `listen` says as it starts: where it listens, the secrets'
//! fingerprints, the policy, the store, the routes and mirrors, and the
//! tunnel and webhook (or the tunnel commands to copy).

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::{ListenPlan, setup_warnings};
use crate::display::escape_line;
use crate::signature::Secret;
use crate::store::OpenReport;

/// Where it listens, the secrets' fingerprints, the policy, the store, and
/// the tunnel and webhook (or the tunnel commands to copy).
pub(crate) fn banner(
    plan: &ListenPlan,
    local: SocketAddr,
    report: &OpenReport,
    public_lines: Option<&[String]>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "danube-hooks listening on http://{local} (POST to any path)"
    );
    for warning in setup_warnings(plan) {
        let _ = writeln!(out, "  warning:  {warning}");
    }
    let secrets = if plan.secrets.is_empty() {
        "none: signatures are not checked (pass --secret-file PATH or --secret whsec_…, or set DANUBE_WEBHOOK_SECRET)"
            .to_string()
    } else {
        let fingerprints: Vec<String> = plan.secrets.iter().map(Secret::fingerprint).collect();
        fingerprints.join(", ")
    };
    let _ = writeln!(out, "  secrets:  {secrets}");
    let _ = writeln!(out, "  policy:   {}", escape_line(&plan.policy.describe()));
    if let Some(forward) = &plan.forward {
        let _ = writeln!(out, "  forward:  {}", escape_line(&forward.describe()));
    }
    for mirror in &plan.mirrors {
        let _ = writeln!(out, "  mirror:   {mirror}");
    }
    store_lines(&mut out, plan, report);
    if let Some(cut) = report.torn_bytes_cut {
        let _ = writeln!(
            out,
            "  warning:  the store's last line was torn (an earlier run was killed mid-write); cut {cut} bytes"
        );
    }
    if let Some(lines) = public_lines {
        for line in lines {
            let _ = writeln!(out, "  {line}");
        }
        return out;
    }
    let port = local.port();
    let _ = writeln!(out, "  tunnel:   ngrok http {port}");
    let _ = writeln!(
        out,
        "            cloudflared tunnel --url http://localhost:{port}"
    );
    out.push_str(
        "  then register the tunnel's https:// URL (plus any path) as the webhook URL in Danube.\n",
    );
    out
}

/// `7d`, `12h`, `90m`: an age in the largest unit that divides it, as
/// `--store-max-age` takes it.
fn age_text(age: chrono::TimeDelta) -> String {
    let seconds = age.num_seconds();
    let (unit, size) = [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)]
        .into_iter()
        .find(|(_, size)| seconds % size == 0)
        .unwrap_or(("s", 1));
    format!("{}{unit}", seconds / size)
}

/// Where the deliveries go: the file, the shared database, or memory.
fn store_lines(out: &mut String, plan: &ListenPlan, report: &OpenReport) {
    match (&report.path, &plan.database) {
        (_, Some(database)) => {
            let _ = writeln!(
                out,
                "  store:    {} (shared, as {}; next id about {})",
                database.target,
                escape_line(&database.name),
                report.next_id
            );
            if let Some(age) = database.max_age {
                let _ = writeln!(
                    out,
                    "            rows older than {} are deleted (--store-max-age)",
                    age_text(age)
                );
            }
        }
        (Some(path), None) => {
            let _ = writeln!(
                out,
                "  store:    {} (next id {})",
                path.display(),
                report.next_id
            );
        }
        (None, None) => {
            out.push_str("  store:    none (--no-store): deliveries are kept in memory only\n");
        }
    }
}
