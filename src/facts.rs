//! Danube's published facts (SPEC §1), in one place: what Danube does
//! that this tool imitates (`trigger`, `emulate`), judges against
//! (`check`, the dashboard, `deliveries`) or must fit (its API's limits).

use std::time::Duration;

/// How long Danube waits for an answer: an attempt held longer has failed,
/// whatever it is answered later.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// [`DEADLINE`] as the command line writes it, for clap's defaults (a unit
/// test holds the two together).
pub(crate) const DEADLINE_ARG: &str = "10s";

/// How old a signature's `t` may be, in seconds, before a receiver should
/// refuse it as a replay (the SDK's default tolerance).
pub(crate) const TOLERANCE_S: u64 = 300;

/// Attempts Danube makes per delivery, the first included.
pub(crate) const ATTEMPTS: u32 = 3;

/// Characters of a receiver's answer body that Danube keeps in its
/// delivery record.
pub(crate) const RESPONSE_BODY_CHARS: usize = 2000;

/// Deliveries Danube lists at most in one page of
/// `GET /v1/webhooks/{id}/deliveries` (`limit` is 1 to this).
pub(crate) const DELIVERIES_PAGE_MAX: u32 = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_as_written_is_the_deadline() {
        assert_eq!(crate::cli::parse_duration(DEADLINE_ARG), Ok(DEADLINE));
    }
}
