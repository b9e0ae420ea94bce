//! Fixtures the unit tests of several modules share, in one place rather
//! than in one module's `tests` for the others to import. Loopback servers
//! are in `test_servers`; the black-box tests have their own in
//! `tests/common`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Utc};

use crate::delivery::{Delivery, Grouping, ResponseRecord, event_of, group_key};
use crate::signature::{SignatureCheck, Verdict};
use crate::store::{Arrival, Start};
use crate::tui::app::{AppConfig, HISTORY_BYTES, HISTORY_CAP, RegisteredWith};

/// A plausible record: received, signed `valid`, answered `200`.
pub(crate) fn sample(id: u64, body: &[u8]) -> Delivery {
    Delivery {
        id,
        received_at: DateTime::parse_from_rfc3339("2026-11-23T09:14:07.123Z")
            .unwrap()
            .with_timezone(&Utc),
        remote_addr: "127.0.0.1:50312".into(),
        local_addr: None,
        method: "POST".into(),
        path: "/webhooks/danube?x=1".into(),
        http_version: "HTTP/1.1".into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-danube-signature".into(), "t=1,sha256=00".into()),
            ("x-dup".into(), "a".into()),
            ("x-dup".into(), "b".into()),
        ],
        raw_headers: vec![],
        body: body.to_vec(),
        body_size: body.len() as u64,
        body_truncated: false,
        event: event_of(body),
        group: group_key(&Grouping::BodyHash, &[], body),
        attempt: 1,
        signature: SignatureCheck {
            verdict: Verdict::Valid,
            timestamp: Some(1),
            skew_s: Some(0),
            secret: Some("whsec_…abcd".into()),
            detail: "ok.".into(),
            hints: vec![],
        },
        replay_of: None,
        response: ResponseRecord {
            action: "status".into(),
            status: Some(200),
            delay_ms: 0,
            rule: "default 200".into(),
        },
        forward: None,
        mirrors: Vec::new(),
        redelivery_of: None,
        resent_from: None,
        edited: None,
        listener: None,
        duration_ms: 0.4,
    }
}

/// A start of the listener whose first record is `first_id`, at a time
/// that rises with it.
pub(crate) fn start(first_id: u64) -> Start {
    Start {
        first_id,
        at: DateTime::from_timestamp(1_796_000_000 + first_id as i64, 0).unwrap(),
        listener: None,
    }
}

/// A delivery in flight, held `held` by `now`, to be answered by `step`.
pub(crate) fn arrival(now: Instant, held: Duration, step: &str) -> Arrival {
    Arrival {
        number: 0,
        received_at: DateTime::parse_from_rfc3339("2026-11-23T09:14:07.123Z")
            .unwrap()
            .with_timezone(&Utc),
        at: now.checked_sub(held).unwrap_or(now),
        remote_addr: "127.0.0.1:50000".into(),
        method: "POST".into(),
        path: "/webhooks/danube".into(),
        event: Some("tool.execution.completed".into()),
        verdict: Verdict::Valid,
        attempt: 2,
        step: step.into(),
    }
}

/// `depth` levels of JSON arrays around `1,1,1,…`: about `size` bytes,
/// the costliest shape to parse or re-indent.
pub(crate) fn nested(depth: usize, size: usize) -> Vec<u8> {
    let mut body = "[".repeat(depth).into_bytes();
    while body.len() + depth + 2 < size {
        body.extend_from_slice(b"1,");
    }
    body.push(b'1');
    body.extend(std::iter::repeat_n(b']', depth));
    body
}

/// The dashboard's setup: a listener on port 4000 with one secret, a store,
/// colours, UTC, and the default history limits.
pub(crate) fn app_config() -> AppConfig {
    AppConfig {
        listen_url: "http://127.0.0.1:4000".into(),
        fingerprints: vec!["whsec_…1234".into()],
        store_path: Some(PathBuf::from(
            "/home/dev/.local/share/danube-hooks/deliveries.jsonl",
        )),
        shared_store: None,
        forward_url: None,
        danube_webhook: None,
        tunnel: None,
        registered_with: RegisteredWith::Nothing,
        log_path: PathBuf::from("/home/dev/.local/share/danube-hooks/danube-hooks.log"),
        color: true,
        utc_offset: FixedOffset::east_opt(0).unwrap(),
        history_cap: HISTORY_CAP,
        history_bytes: HISTORY_BYTES,
        viewer: false,
    }
}
