//! `danube-hooks verify`: a verdict on a signature, and why.

use std::fmt::Write as _;
use std::time::Instant;

use crate::cli::VerifyArgs;
use crate::commands::{Outcome, unix_now};
use crate::display::{escape_line, to_json_line};
use crate::signature::{self, Checked, ForensicsBudget, SignatureCheck, Verdict};

pub(crate) fn run(args: &VerifyArgs) -> anyhow::Result<Outcome> {
    let secrets = args.secret.required("verify")?;
    let body = args.body.read()?;
    let now = args.now.unwrap_or_else(unix_now);
    // The whole explanation, never skipped for load as in the listener,
    // but within the same budget: the body may be a stranger's.
    let check = match signature::verify_unexplained(
        &secrets,
        Some(args.header_value()),
        &body,
        now,
        args.tolerance,
    ) {
        Checked::Done(check, _) => check,
        Checked::Mismatch(mismatch) => {
            let budget = ForensicsBudget::DEFAULT;
            let deadline = Instant::now() + budget.time;
            let out_of_time = &mut || Instant::now() >= deadline;
            mismatch.explain(&secrets, &body, &budget, out_of_time).0
        }
    };
    if args.json {
        crate::commands::out_line(&to_json_line(&check))?;
    } else {
        crate::commands::out(&render_for_a_person(&check, Some(args.tolerance)))?;
    }
    Ok(if check.verdict == Verdict::Valid {
        Outcome::Success
    } else {
        Outcome::Negative
    })
}

/// The verdict first, then the detail, the hints and the skew.
/// `tolerance_s`, when known, is named beside the skew.
pub(crate) fn render_for_a_person(check: &SignatureCheck, tolerance_s: Option<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", check.verdict.as_str().to_uppercase());
    let _ = writeln!(out, "{}", escape_line(&check.detail));
    for hint in &check.hints {
        let _ = writeln!(out, "  hint: {}", escape_line(hint));
    }
    if let (Some(t), Some(skew)) = (check.timestamp, check.skew_s) {
        let tolerance = tolerance_s
            .map(|s| format!("; tolerance {s} s"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  skew: {skew} s (t={t}; positive is in the past{tolerance})"
        );
    }
    if let Some(secret) = &check.secret {
        let _ = writeln!(out, "  secret: {secret}");
    }
    out
}
