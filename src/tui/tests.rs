//! Whole screens of the dashboard, drawn on ratatui's `TestBackend` and
//! kept as `insta` snapshots at 80×24 and 160×48; and the promises about
//! every screen: no untrusted control character reaches a cell, and
//! `NO_COLOR` means no colour.
//!
//! Times, ids and the UTC offset are fixed, so a snapshot changes only
//! when the screen does.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::Color;

use super::app::{App, StatusKind};
use super::config::{AppConfig, RegisteredWith};
use super::fit;
use crate::delivery::{Delivery, ForwardRecord, MirrorRecord, ResponseRecord};
use crate::policy::{Policy, PolicyHandle};
use crate::signature::Verdict;
use crate::test_support::sample;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

const TOOL_COMPLETED: &str = r#"{"event":"tool.execution.completed","timestamp":"2026-11-23T09:14:07.123456Z","data":{"tool_id":"abc-123","tool_name":"Gmail - Send Email","status":"success","execution_time":1.234,"error":null}}"#;
const WORKFLOW_FAILED: &str = r#"{"event":"workflow.failed","timestamp":"2026-11-23T09:14:07.123456Z","data":{"workflow_id":"wf-7f3a","workflow_name":"Daily digest","status":"failed","execution_time":3.25,"error":"step 2 (Slack - Post Message) failed"}}"#;

fn config(forwarding: bool) -> AppConfig {
    AppConfig {
        fingerprints: vec!["whsec_…LaSw".into()],
        forward_url: forwarding.then(|| "http://localhost:3000/webhooks/danube".to_string()),
        ..crate::test_support::app_config()
    }
}

fn app(forwarding: bool) -> App {
    App::new(
        config(forwarding),
        PolicyHandle::new(Policy::default_for(forwarding)),
    )
}

fn at(time: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(time)
        .unwrap()
        .with_timezone(&Utc)
}

fn headers(body: &str, t: i64) -> Vec<(String, String)> {
    vec![
        ("host".into(), "hooks.example.ngrok.app".into()),
        ("user-agent".into(), "Danube-Webhooks/1.0".into()),
        ("content-length".into(), body.len().to_string()),
        ("content-type".into(), "application/json".into()),
        (
            "x-danube-signature".into(),
            format!(
                "t={t},sha256=f95356e13685559cb836d8a17a153ecc25c5cd484a1c841d85daa01c859d0b88"
            ),
        ),
        ("x-forwarded-for".into(), "203.0.113.7".into()),
        ("accept-encoding".into(), "gzip".into()),
    ]
}

fn delivery(id: u64, time: &str, body: &str) -> Delivery {
    let mut d = sample(id, body.as_bytes());
    d.received_at = at(time);
    d.headers = headers(body, 1_795_430_047);
    d.path = "/webhooks/danube".into();
    d.signature.timestamp = Some(1_795_430_047);
    d.signature.skew_s = Some(2);
    d.signature.secret = Some("whsec_…LaSw".into());
    d.signature.detail =
        "The signature matches secret whsec_…LaSw and t is 2 s old (tolerance 300 s).".into();
    d.response.rule = "default 200".into();
    d.duration_ms = 0.8;
    d
}

fn mismatch(mut d: Delivery) -> Delivery {
    d.signature.verdict = Verdict::Mismatch;
    d.signature.secret = None;
    d.signature.detail =
        "No configured secret (whsec_…LaSw) gives this digest for this body and t.".into();
    d.signature.hints = vec![
        "the digest matches if the body ended with a newline: the trailing newline was \
         removed after signing"
            .into(),
    ];
    d
}

fn stale(mut d: Delivery) -> Delivery {
    d.signature.verdict = Verdict::Stale;
    d.signature.skew_s = Some(952);
    d.signature.detail = "The signature matches secret whsec_…LaSw, but t is 952 s old, \
                          beyond the 300 s tolerance."
        .into();
    d.signature.hints = vec![
        "a receiver must reject it: check this machine's clock, or whether the delivery \
         was held up or replayed"
            .into(),
    ];
    d
}

fn answered(mut d: Delivery, action: &str, status: Option<u16>, rule: &str) -> Delivery {
    d.response = ResponseRecord {
        action: action.into(),
        status,
        delay_ms: 0,
        rule: rule.into(),
    };
    d
}

/// Valid, mismatch, stale, and answers of each kind.
fn list_app() -> App {
    let mut app = app(false);
    let deliveries = [
        delivery(1, "2026-11-23T09:14:07.123Z", TOOL_COMPLETED),
        mismatch(answered(
            delivery(2, "2026-11-23T09:14:09.456Z", WORKFLOW_FAILED),
            "status",
            Some(500),
            "500 #1",
        )),
        stale(delivery(3, "2026-11-23T09:15:41.002Z", TOOL_COMPLETED)),
        answered(
            delivery(4, "2026-11-23T09:16:00.250Z", WORKFLOW_FAILED),
            "reset",
            None,
            "reset #1",
        ),
    ];
    let mut deliveries = deliveries;
    deliveries[3].attempt = 2;
    for d in deliveries {
        app.ingest(Arc::new(d));
    }
    app
}

/// One delivery tried three times: 500, 500, then forwarded to the
/// receiver, which answered 201.
fn timeline_app() -> App {
    let mut app = app(true);
    let rule = "500,500,forward";
    let first = mismatch(answered(
        delivery(7, "2026-11-23T09:14:07.123Z", TOOL_COMPLETED),
        "status",
        Some(500),
        &format!("{rule} #1"),
    ));
    let second = answered(
        delivery(8, "2026-11-23T09:14:12.130Z", TOOL_COMPLETED),
        "status",
        Some(500),
        &format!("{rule} #2"),
    );
    let mut third = answered(
        delivery(9, "2026-11-23T09:14:37.200Z", TOOL_COMPLETED),
        "forward",
        Some(201),
        &format!("{rule} #3"),
    );
    third.forward = Some(ForwardRecord {
        url: "http://localhost:3000/webhooks/danube".into(),
        status: Some(201),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-request-id".into(), "req-5d1c".into()),
        ],
        error: None,
        duration_ms: 12,
        body_preview: Some(r#"{"received":true}"#.into()),
    });
    third.duration_ms = 14.2;
    for (attempt, mut d) in [first, second, third].into_iter().enumerate() {
        d.attempt = attempt as u32 + 1;
        app.ingest(Arc::new(d));
    }
    app.ingest(Arc::new(delivery(
        10,
        "2026-11-23T09:14:40.000Z",
        WORKFLOW_FAILED,
    )));
    press(&mut app, "k");
    app
}

fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        app.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
}

fn press_code(app: &mut App, code: KeyCode) {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn draw(app: &mut App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let detail = fit(app, Rect::new(0, 0, width, height));
    let screen = super::view::Screen {
        app,
        detail: &detail,
    };
    terminal
        .draw(|frame| frame.render_widget(screen, frame.area()))
        .unwrap();
    terminal
}

/// The screen as text, one quoted row per line.
fn screen(app: &mut App, width: u16, height: u16) -> String {
    draw(app, width, height).backend().to_string()
}

/// A snapshot of `app` at each size.
fn snap(name: &str, app: &mut App) {
    for (width, height) in SIZES {
        insta::assert_snapshot!(
            format!("{name}_{width}x{height}"),
            screen(app, width, height)
        );
    }
}

#[test]
fn empty() {
    snap("empty", &mut app(false));
}

/// `listen --register`: a fourth header row names the webhook, its URL,
/// the secret's fingerprint and what happens on exit; the list gives up
/// the row, and an escape in it (from Danube's answer) stays visible text.
#[test]
fn header_names_the_registered_webhook() {
    let mut app = list_app();
    app.config.danube_webhook = Some(
        "wh_8f3a\u{1b}[2J (whsec_…LaSw) → https://abc.ngrok.app/webhooks/danube · paused on exit"
            .to_owned(),
    );
    snap("header_danube_webhook", &mut app);
    let text = screen(&mut app, 80, 24);
    assert!(!text.contains('\u{1b}'), "{text}");
    assert_eq!(
        super::view::list_rows(&app, Rect::new(0, 0, 80, 24)) + 1,
        super::view::list_rows(&list_app(), Rect::new(0, 0, 80, 24))
    );
}

/// `listen --tunnel`: a header row names the tunnel, above the webhook's;
/// both follow what the tunnel and the webhook become (a start again with a
/// new URL, a re-point), and each notice reaches the status line once.
#[test]
fn the_tunnel_row_and_notices_follow_the_public_side() {
    use crate::danube::tunnel::{Notice, View};
    let mut app = list_app();
    let first = View {
        tunnel: Some(
            "cloudflared https://tall-river-1234.trycloudflare.com (pid 4242; started again if \
             it exits)"
                .to_owned(),
        ),
        webhook: Some(
            "wh_8f3a (whsec_…LaSw) → https://tall-river-1234.trycloudflare.com/webhooks/danube \
             · paused on exit"
                .to_owned(),
        ),
        notice: None,
    };
    app.apply_public(&first);
    snap("header_tunnel", &mut app);
    let text = screen(&mut app, 160, 48);
    assert!(
        text.contains("tunnel         cloudflared https://tall-river-1234"),
        "{text}"
    );
    assert!(
        super::view::list_rows(&app, Rect::new(0, 0, 80, 24))
            < super::view::list_rows(&list_app(), Rect::new(0, 0, 80, 24)),
        "the header rows take their room from the screen"
    );
    let again = View {
        tunnel: Some("cloudflared https://new-name-99.trycloudflare.com (pid 4300, started 2×)".into()),
        webhook: Some("wh_8f3a (whsec_…LaSw) → https://new-name-99.trycloudflare.com/webhooks/danube · paused on exit".into()),
        notice: Some(Notice {
            seq: 1,
            text: "cloudflared started again with a new URL; re-pointed Danube webhook wh_8f3a".into(),
            is_error: false,
        }),
    };
    app.apply_public(&again);
    let text = screen(&mut app, 160, 48);
    assert!(
        text.contains("new-name-99.trycloudflare.com (pid 4300, started 2×)"),
        "{text}"
    );
    assert!(
        text.contains("→ https://new-name-99.trycloudflare.com/webhooks/danube"),
        "{text}"
    );
    assert!(text.contains("re-pointed Danube webhook wh_8f3a"), "{text}");
    // The same notice again is not shown again over a newer status.
    app.set_status(StatusKind::Info, "replayed #3");
    app.apply_public(&again);
    assert!(screen(&mut app, 160, 48).contains("replayed #3"));
}

/// `--tunnel` without a credential: the empty list says what to paste, not
/// how to start a tunnel.
#[test]
fn the_empty_list_under_an_unregistered_tunnel_says_what_to_paste() {
    let mut app = app(false);
    app.config.tunnel =
        Some("cloudflared https://tall-river-1234.trycloudflare.com (pid 4242)".into());
    let text = screen(&mut app, 80, 24);
    assert!(text.contains("through the tunnel in the header"), "{text}");
    assert!(text.contains("danube-hooks login"), "{text}");
    assert!(!text.contains("ngrok http"), "{text}");
}

/// Under `--register` the webhook's secret is Danube's, so the empty list
/// suggests what works there: a real event from Danube, or `trigger
/// --emulator` when the API is the emulator on this machine; never
/// `trigger --secret`. Unregistered, the tunnel hint stays, and no line is
/// cut at 80 columns.
#[test]
fn the_empty_list_suggests_a_first_delivery_that_works_where_it_was_registered() {
    let webhook = "wh_8f3a (whsec_…LaSw) → https://abc.ngrok.app/webhooks/danube · paused on exit";
    let cases = [
        (
            "empty_registered_danube",
            RegisteredWith::api("https://api.danubeai.com"),
            "Run a workflow or a tool in Danube",
        ),
        (
            "empty_registered_emulator",
            RegisteredWith::api("http://127.0.0.1:4200"),
            "danube-hooks trigger workflow.completed --emulator http://127.0.0.1:4200",
        ),
    ];
    for (name, registered_with, hint) in cases {
        let mut app = app(false);
        app.config.danube_webhook = Some(webhook.to_owned());
        app.config.registered_with = registered_with;
        snap(name, &mut app);
        let text = screen(&mut app, 80, 24);
        assert!(text.contains(hint), "{name}:\n{text}");
        assert!(!text.contains("--secret"), "{name}:\n{text}");
        assert!(text.contains("Waiting for"), "{name}:\n{text}");
    }
    let mut app = app(false);
    let text = screen(&mut app, 80, 24);
    for whole in [
        "Waiting for deliveries: POST to http://127.0.0.1:4000/any/path",
        "cloudflared tunnel --url http://localhost:4000",
        "then register the tunnel's https:// URL as the webhook URL in Danube.",
    ] {
        assert!(text.contains(whole), "{whole}:\n{text}");
    }
}

#[test]
fn an_api_on_this_machine_is_taken_for_the_emulator() {
    for (origin, emulator) in [
        ("http://127.0.0.1:4200", true),
        ("http://localhost:4200", true),
        ("http://[::1]:4200", true),
        ("https://api.danubeai.com", false),
        ("https://127.0.0.1.example.com", false),
        ("not a url", false),
    ] {
        let expected = if emulator {
            RegisteredWith::Emulator {
                api_url: origin.to_owned(),
            }
        } else {
            RegisteredWith::Danube
        };
        assert_eq!(RegisteredWith::api(origin), expected, "{origin}");
    }
}

#[test]
fn list_with_valid_mismatch_and_stale() {
    snap("list", &mut list_app());
}

const SPEND_LIMIT: &str = r#"{"event":"agent.spend.limit_approaching","timestamp":"2026-11-23T09:16:30.000000Z","data":{"agent_id":"ag-1","spent":9.5,"limit":10}}"#;

/// `list_app` and Danube's longest event type, at ids of four digits.
fn widths_app() -> App {
    let mut app = list_app();
    let mut d = delivery(1234, "2026-11-23T09:16:30.500Z", SPEND_LIMIT);
    d.response.status = Some(503);
    app.ingest(Arc::new(d));
    app
}

/// The list's row of column names, and where each name starts.
fn column_starts(text: &str) -> (String, Vec<(String, usize)>) {
    let names = text
        .lines()
        .find(|l| l.contains("VERDICT"))
        .expect("the column names")
        .trim_matches('"')
        .to_owned();
    let mut starts = Vec::new();
    let mut at = 0;
    for word in names.split(' ') {
        if !word.is_empty() {
            starts.push((word.to_owned(), names[..at].chars().count()));
        }
        at += word.len() + 1;
    }
    (names, starts)
}

fn footer(text: &str) -> &str {
    let last = text.lines().last().unwrap();
    last.trim_matches('"').trim_end()
}

/// The columns share the width by what the rows on screen hold: every
/// event whole from 60 columns on, the event no wider than the longest one
/// shown, the path when there is room; the key bar shortens rather than
/// being cut, and keeps `?`.
#[test]
fn columns_and_keys_share_the_width_by_what_they_hold() {
    let mut app = widths_app();
    for (width, height) in [(60, 20), (80, 24), (100, 30), (160, 48)] {
        let name = format!("widths_{width}x{height}");
        let text = screen(&mut app, width, height);
        insta::assert_snapshot!(name, text);
        // At 60 the duration has gone, and the longest event gives up its
        // tail before the time goes.
        let whole: &[&str] = if width >= 80 {
            &["agent.spend.limit_approaching", "tool.execution.completed"]
        } else {
            &["agent.spend.limit_approa…", "tool.execution.completed"]
        };
        for event in whole {
            assert!(
                text.contains(&format!(" {event} ")),
                "{event} cut at {width}:\n{text}"
            );
        }
        let (names, starts) = column_starts(&text);
        let start = |name: &str| starts.iter().find(|(n, _)| n == name).map(|(_, at)| *at);
        let event = start("EVENT").unwrap();
        let next = starts
            .iter()
            .find(|(_, at)| *at > event)
            .map(|(_, at)| *at)
            .unwrap();
        assert!(
            next - event <= "agent.spend.limit_approaching".len() + 2,
            "EVENT takes {} at {width}: {names}",
            next - event
        );
        assert_eq!(start("PATH").is_some(), width >= 100, "{names}");
        assert_eq!(start("DURATION").is_some(), width >= 80, "{names}");
        let keys = footer(&text);
        assert!(keys.starts_with("? help  q quit"), "{keys}");
        assert!(keys.contains("p policy"), "{keys}");
        if width >= 160 {
            assert!(keys.contains("↑↓/jk move") && keys.contains("g/G first/last"));
        }
    }
    // With Danube's key as well, the policy key stays at 80 columns; on a
    // screen too narrow for all, only whole keys, and `?` always.
    let mut danube = danube_app();
    let keys = screen(&mut danube, 80, 24);
    assert!(
        footer(&keys).contains("D Danube") && footer(&keys).contains("p policy"),
        "{keys}"
    );
    for width in [8, 20, 33] {
        let text = screen(&mut danube, width, 24);
        let keys = footer(&text);
        assert!(keys.starts_with("? help"), "{width}: {keys}");
        assert!(!keys.contains('…'), "{keys}");
        for pair in keys.split("  ") {
            assert!(
                [
                    "? help",
                    "q quit",
                    "D Danube",
                    "p policy",
                    "r/R replay",
                    "/ filter"
                ]
                .contains(&pair),
                "{width}: {pair:?} in {keys:?}"
            );
        }
    }
}

#[test]
fn list_filtered_and_paused() {
    let mut app = list_app();
    press(&mut app, "k/");
    for c in "event:workflow.*".chars() {
        press(&mut app, &c.to_string());
    }
    press_code(&mut app, KeyCode::Enter);
    snap("list_filtered", &mut app);
}

/// The `/` filter being typed: the query on the status line with how many
/// deliveries match it, and the list's title with the count too.
#[test]
fn a_query_being_typed_shows_how_many_match() {
    let mut app = list_app();
    press(&mut app, "/-event:tool.* status:!2xx attempt:>=1");
    // The workflows: #2 answered 500, #4 reset (no status at all).
    assert_eq!(app.list_len(), 2);
    snap("list_query", &mut app);
    let text = screen(&mut app, 160, 48);
    assert!(
        text.contains("2 of 4 match") && text.contains("2 shown of 4"),
        "{text}"
    );
    // A bad term: the error says where and what is allowed, and the footer
    // puts a caret under it, as `log --query` does.
    press(&mut app, " stauts:5");
    let text = screen(&mut app, 160, 48);
    assert!(
        text.contains("at column 39, expected a key (event:, verdict:"),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let query = lines
        .iter()
        .find(|line| line.contains("filter -event:"))
        .expect("the query on the status line");
    let caret = lines
        .iter()
        .find(|line| line.trim_start_matches('"').trim_start().starts_with("^ "))
        .expect("a caret line");
    let at = |line: &str, what: &str| line.find(what).unwrap();
    assert_eq!(at(caret, "^"), at(query, "stauts:5"), "{text}");
}

#[test]
fn overview_with_a_three_attempt_timeline() {
    let mut app = timeline_app();
    press(&mut app, "k");
    assert_eq!(app.selected().unwrap().id, 8);
    snap("overview_timeline", &mut app);
}

/// A changed copy of #1 sent back to the listener: its overview says whose
/// copy it claims to be, and what changed against #1, body and headers,
/// with a stranger's bytes escaped.
#[test]
fn overview_of_an_edited_copy_shows_what_changed() {
    let mut app = app(false);
    let body = TOOL_COMPLETED
        .replace(r#""status":"success""#, r#""status":"failed""#)
        .replace(
            r#""error":null"#,
            r#""error":"quota \u001b[31m","odd\u202ekey":true"#,
        );
    let mut copy = delivery(2, "2026-11-23T09:15:00.000Z", &body);
    copy.headers.retain(|(name, _)| name != "x-forwarded-for");
    copy.headers.extend([
        ("x-test".into(), "1".into()),
        ("x-danube-hooks-resent-from".into(), "1".into()),
        ("x-danube-hooks-edited".into(), "true".into()),
    ]);
    copy.resent_from = Some(1);
    copy.edited = Some(true);
    app.ingest(Arc::new(delivery(
        1,
        "2026-11-23T09:14:07.123Z",
        TOOL_COMPLETED,
    )));
    app.ingest(Arc::new(copy));
    assert_eq!(app.selected().unwrap().id, 2);
    assert_clean(draw(&mut app, 160, 48).backend().buffer(), "edited copy");
    snap("overview_edited_copy", &mut app);
}

#[test]
fn headers_tab() {
    let mut app = timeline_app();
    press(&mut app, "2");
    snap("headers", &mut app);
}

#[test]
fn body_tab_pretty_raw_and_hex() {
    let mut app = timeline_app();
    press(&mut app, "b");
    snap("body_pretty", &mut app);
    press(&mut app, "b");
    snap("body_raw", &mut app);
    press(&mut app, "b");
    snap("body_hex", &mut app);
}

/// A delivery forwarded by a route and mirrored to three: one answered,
/// one refused, one still waiting when the record was written that then
/// times out (announced later): the list marks the mirrors, and the
/// overview and the response tab show each.
#[test]
fn forward_and_mirrors_in_the_list_and_the_detail() {
    let mut app = app(true);
    let mut d = answered(
        delivery(12, "2026-11-23T09:14:37.200Z", TOOL_COMPLETED),
        "forward",
        Some(201),
        "default forward",
    );
    d.forward = Some(ForwardRecord {
        url: "http://localhost:3001/tools".into(),
        status: Some(201),
        headers: Vec::new(),
        error: None,
        duration_ms: 9,
        body_preview: None,
    });
    let waiting = MirrorRecord {
        url: "http://localhost:4002/hooks".into(),
        status: None,
        error: None,
        duration_ms: 11,
    };
    d.mirrors = vec![
        MirrorRecord {
            url: "http://localhost:4001/hooks".into(),
            status: Some(200),
            error: None,
            duration_ms: 4,
        },
        waiting.clone(),
        MirrorRecord {
            url: "http://127.0.0.1:4003/hooks".into(),
            status: None,
            error: Some("cannot connect to http://127.0.0.1:4003/hooks: Connection refused".into()),
            duration_ms: 0,
        },
    ];
    app.ingest(Arc::new(d));
    snap("mirrors_waiting", &mut app);
    app.mirrored(
        12,
        1,
        &MirrorRecord {
            error: Some("no answer from http://localhost:4002/hooks within 10000 ms".into()),
            duration_ms: 10_000,
            ..waiting
        },
    );
    assert!(app.selected().unwrap().mirrors[1].error.is_some());
    snap("mirrors_overview", &mut app);
    press(&mut app, "4");
    snap("mirrors_response", &mut app);
}

#[test]
fn a_delivery_no_route_took_says_so_in_the_response_tab() {
    let mut app = app(true);
    let rule = format!("default forward{}", crate::delivery::NO_ROUTE);
    let d = answered(
        delivery(3, "2026-11-23T09:14:40.000Z", WORKFLOW_FAILED),
        "status",
        Some(200),
        &rule,
    );
    app.ingest(Arc::new(d));
    press(&mut app, "4");
    let shown = screen(&mut app, 160, 48);
    assert!(
        shown.contains("not forwarded: no --forward-to rule matches its event"),
        "{shown}"
    );
}

#[test]
fn response_tab_with_a_forward() {
    let mut app = timeline_app();
    press(&mut app, "4");
    assert_eq!(app.selected().unwrap().id, 9);
    snap("response_forward", &mut app);
}

#[test]
fn response_tab_of_a_reset_says_what_a_tunnel_makes_of_it() {
    let mut app = list_app();
    press(&mut app, "4");
    assert_eq!(app.selected().unwrap().response.action, "reset");
    let text = screen(&mut app, 160, 48);
    assert!(
        text.contains("tunnel answers with its own gateway error"),
        "{text}"
    );
}

#[test]
fn policy_picker() {
    let mut app = list_app();
    press(&mut app, "pjj");
    snap("picker", &mut app);
}

/// `--respond 'workflow.*=timeout' --respond 500,200`, then `p` and the
/// 503 preset: before Enter the picker says that 503 replaces both rules,
/// the event rule too, and how to keep it; after, the status line says
/// which rules went, and the policy is 503 for every event.
#[test]
fn a_preset_says_which_rules_it_replaces_before_and_after() {
    let rules = ["workflow.*=timeout".to_owned(), "500,200".to_owned()];
    let handle = PolicyHandle::new(Policy::parse(&rules, false).unwrap());
    let mut app = App::new(config(false), handle.clone());
    for d in [
        delivery(1, "2026-11-23T09:14:07.123Z", TOOL_COMPLETED),
        delivery(2, "2026-11-23T09:14:09.456Z", WORKFLOW_FAILED),
    ] {
        app.ingest(Arc::new(d));
    }
    press(&mut app, "p");
    press_code(&mut app, KeyCode::BackTab);
    press(&mut app, "jj");
    snap("picker_replaces", &mut app);
    let text = screen(&mut app, 80, 24);
    assert!(
        text.contains("Enter replaces all 2 rules with 503 for every event, workflow.*=timeout")
            && text.contains("too; to keep it, edit the rules (Tab)."),
        "{text}"
    );
    press_code(&mut app, KeyCode::Enter);
    assert_eq!(handle.current().describe(), "503");
    let status = app.status().unwrap();
    assert_eq!(
        status.text,
        "policy for the next deliveries: 503 for every event; it replaced 2 rules: \
         workflow.*=timeout; 500,200"
    );
    assert_eq!(status.kind, StatusKind::Success);
    // Typed in the field, the rules are kept as typed and nothing is said
    // to be replaced: the field showed them.
    press(&mut app, "p");
    press_code(&mut app, KeyCode::Tab);
    for c in "workflow.*=timeout; 429".chars() {
        press(&mut app, &c.to_string());
    }
    press_code(&mut app, KeyCode::Enter);
    assert_eq!(handle.current().describe(), "workflow.*=timeout; 429");
    assert_eq!(
        app.status().unwrap().text,
        "policy for the next deliveries: workflow.*=timeout; 429"
    );
}

#[test]
fn policy_picker_with_an_inline_parse_error() {
    let mut app = list_app();
    press(&mut app, "p");
    press_code(&mut app, KeyCode::Tab);
    for c in "500,500,forwrd".chars() {
        press(&mut app, &c.to_string());
    }
    press_code(&mut app, KeyCode::Enter);
    snap("picker_error", &mut app);
}

#[test]
fn help() {
    let mut app = list_app();
    press(&mut app, "?");
    snap("help", &mut app);
}

/// `list_app` with two deliveries in flight at a fixed clock: one held
/// 3.2 s by `timeout`, one 12.4 s into a `12s+200`, past Danube's deadline.
fn in_flight_app() -> App {
    use std::time::{Duration, Instant};
    let mut app = list_app();
    let now = Instant::now();
    let mut held = crate::test_support::arrival(now, Duration::from_millis(3240), "timeout");
    held.number = 2;
    held.received_at = at("2026-11-23T09:16:03.100Z");
    let mut late = crate::test_support::arrival(now, Duration::from_millis(12_400), "12s+200");
    late.number = 1;
    late.event = Some("workflow.failed".into());
    late.verdict = Verdict::Mismatch;
    late.attempt = 1;
    late.received_at = at("2026-11-23T09:15:53.900Z");
    app.in_flight.arrive(Arc::new(held));
    app.in_flight.arrive(Arc::new(late));
    app.in_flight.set_now(now);
    app
}

#[test]
fn deliveries_in_flight_are_pinned_under_the_list_with_their_hold_and_counted() {
    let mut app = in_flight_app();
    snap("in_flight", &mut app);
    let text = screen(&mut app, 80, 24);
    assert!(text.contains("2 in flight"), "{text}");
    assert!(text.contains("held 3.2s / 10s · timeout"), "{text}");
    assert!(text.contains("held 12.4s / 10s · 12s+200"), "{text}");
    // Past Danube's deadline in red, before it in yellow.
    let terminal = draw(&mut app, 160, 48);
    let buffer = terminal.backend().buffer();
    let colour_of = |needle: &str| {
        let text = all_text(buffer);
        let at = text.find(needle).unwrap();
        let cells = text[..at].chars().count();
        buffer.content[cells].fg
    };
    assert_eq!(colour_of("held 12.4s"), Color::Red);
    assert_eq!(colour_of("held 3.2s"), Color::Yellow);
    // The answered deliveries keep the rest of the list, and the
    // selection stays among them.
    assert_eq!(app.selected().unwrap().id, 4);
    assert!(text.contains("#4"), "{text}");
    // Settled: gone from the list and the header.
    app.in_flight.settle(1);
    app.in_flight.settle(2);
    let text = screen(&mut app, 80, 24);
    assert!(
        !text.contains("in flight") && !text.contains("held "),
        "{text}"
    );
}

#[test]
fn more_in_flight_than_half_the_list_are_summed_up() {
    use std::time::{Duration, Instant};
    let mut app = list_app();
    let now = Instant::now();
    for number in 1..=9 {
        let mut arrival =
            crate::test_support::arrival(now, Duration::from_secs(10 - number), "timeout");
        arrival.number = number;
        app.in_flight.arrive(Arc::new(arrival));
    }
    app.in_flight.set_now(now);
    let text = screen(&mut app, 80, 24);
    assert!(text.contains("9 in flight"), "{text}");
    // The list has 6 rows at 80×24, 3 for those in flight: the two oldest,
    // and a line for the rest.
    assert!(
        text.contains("held 9.0s / 10s") && text.contains("held 8.0s"),
        "{text}"
    );
    assert!(!text.contains("held 7.0s"), "{text}");
    assert!(text.contains("… and 7 more in flight"), "{text}");
    assert!(
        text.contains("#4"),
        "the newest answered one stays in view: {text}"
    );
}

#[test]
fn the_list_builds_only_what_fits_and_keeps_the_newest_in_view() {
    let mut app = app(false);
    for id in 1..=5000 {
        app.ingest(Arc::new(delivery(
            id,
            "2026-11-23T09:14:07.123Z",
            TOOL_COMPLETED,
        )));
    }
    let text = screen(&mut app, 80, 24);
    assert!(text.contains("#5000"), "{text}");
    assert!(!text.contains("#4000 "), "{text}");
    assert_eq!(
        app.visible().count(),
        super::view::list_rows(&app, Rect::new(0, 0, 80, 24))
    );
}

// ---------------------------------------------------------------------------
// Untrusted text never reaches a cell as itself.

const HOSTILE: &str =
    "a\x1b[2J\x1b]52;c;cHduZWQ=\x07b\u{9b}31m\x7fc\u{202e}d\u{2066}\u{200f}\u{61c}\r\n\te";

fn hostile_delivery(id: u64) -> Delivery {
    // Valid JSON: serde escapes C0 as \u001b, and leaves DEL, C1 and the
    // bidi controls as they are, for the pretty view to escape.
    let body = serde_json::json!({
        "event": format!("tool.{HOSTILE}"),
        "data": { format!("k{HOSTILE}"): HOSTILE, "n": 1 },
    })
    .to_string();
    let mut d = delivery(id, "2026-11-23T09:14:07.123Z", &body);
    d.event = Some(format!("tool.{HOSTILE}"));
    d.path = format!("/hooks/{HOSTILE}");
    d.method = "POST".into();
    d.headers.push((format!("x-{HOSTILE}"), HOSTILE.into()));
    d.remote_addr = HOSTILE.into();
    d.signature.detail = HOSTILE.into();
    d.signature.hints = vec![HOSTILE.into()];
    d.signature.secret = Some(HOSTILE.into());
    d.response.action = format!("reset{HOSTILE}");
    d.response.rule = HOSTILE.into();
    d.forward = Some(ForwardRecord {
        url: format!("http://localhost:3000/{HOSTILE}"),
        status: None,
        headers: vec![(HOSTILE.into(), HOSTILE.into())],
        error: Some(HOSTILE.into()),
        duration_ms: 3,
        body_preview: Some(HOSTILE.into()),
    });
    d
}

fn assert_clean(buffer: &Buffer, what: &str) {
    for cell in &buffer.content {
        assert!(
            !cell.symbol().chars().any(crate::display::is_dangerous),
            "{what}: a cell holds {:?}",
            cell.symbol()
        );
    }
}

#[test]
fn no_control_character_of_a_delivery_in_flight_reaches_a_cell() {
    use std::time::{Duration, Instant};
    let now = Instant::now();
    for method in ["POST", "PUT"] {
        let mut app = app(true);
        let mut arrival = crate::test_support::arrival(now, Duration::from_secs(1), HOSTILE);
        arrival.event = Some(HOSTILE.into());
        arrival.path = format!("/hooks/{HOSTILE}");
        arrival.method = method.into();
        app.in_flight.arrive(Arc::new(arrival.clone()));
        app.in_flight.set_now(now);
        for (width, height) in SIZES.into_iter().chain([(120, 30)]) {
            let terminal = draw(&mut app, width, height);
            assert_clean(terminal.backend().buffer(), &format!("in flight, {method}"));
        }
        let line = crate::headless::arrival_line(&arrival);
        assert!(!line.chars().any(crate::display::is_dangerous), "{line:?}");
    }
}

fn all_text(buffer: &Buffer) -> String {
    buffer
        .content
        .iter()
        .map(ratatui::buffer::Cell::symbol)
        .collect()
}

#[test]
fn no_control_character_of_a_delivery_reaches_a_cell() {
    let mut app = app(true);
    app.ingest(Arc::new(hostile_delivery(1)));
    // Raw bodies that are not JSON, with invalid UTF-8 as well.
    let mut raw = hostile_delivery(2);
    raw.body = [HOSTILE.as_bytes(), b"\xff\xfe"].concat();
    app.ingest(Arc::new(raw));
    app.set_status(StatusKind::Error, HOSTILE);
    let mut screens = Vec::new();
    for selected in ["G", "k"] {
        press(&mut app, selected);
        for tab in ["1", "2", "4"] {
            press(&mut app, tab);
            screens.push(format!("{selected} tab {tab}"));
            for (width, height) in SIZES {
                let terminal = draw(&mut app, width, height);
                assert_clean(terminal.backend().buffer(), screens.last().unwrap());
            }
        }
        press(&mut app, "3");
        for mode in ["pretty", "raw", "hex"] {
            for (width, height) in SIZES {
                let terminal = draw(&mut app, width, height);
                assert_clean(
                    terminal.backend().buffer(),
                    &format!("{selected} body {mode}"),
                );
            }
            press(&mut app, "b");
        }
    }
    // Typed into the filter and the picker's field (a paste can carry
    // anything).
    press(&mut app, "/");
    for c in HOSTILE.chars() {
        press(&mut app, &c.to_string());
    }
    let terminal = draw(&mut app, 120, 30);
    assert_clean(terminal.backend().buffer(), "filter");
    press_code(&mut app, KeyCode::Esc);
    press(&mut app, "p");
    press_code(&mut app, KeyCode::Tab);
    for c in HOSTILE.chars() {
        press(&mut app, &c.to_string());
    }
    press_code(&mut app, KeyCode::Enter);
    let terminal = draw(&mut app, 120, 30);
    assert_clean(terminal.backend().buffer(), "picker");

    // Shown as visible escapes, not dropped.
    press_code(&mut app, KeyCode::Esc);
    press(&mut app, "G2");
    let terminal = draw(&mut app, 160, 48);
    let text = all_text(terminal.backend().buffer());
    for escape in [
        "\\x1b[2J",
        "\\x1b]52;c;",
        "\\x07",
        "\\x9b",
        "\\x7f",
        "\\u{202e}",
        "\\u{2066}",
        "\\u{200f}",
        "\\u{061c}",
    ] {
        assert!(text.contains(escape), "{escape} is not shown in:\n{text}");
    }
}

#[test]
fn no_color_means_no_colour_in_any_cell() {
    let mut colored = timeline_app();
    let terminal = draw(&mut colored, 120, 40);
    assert!(
        terminal
            .backend()
            .buffer()
            .content
            .iter()
            .any(|c| c.fg != Color::Reset || c.bg != Color::Reset),
        "colour is used when allowed"
    );
    let mut plain = timeline_app();
    plain.config.color = false;
    for keys in ["", "2", "3", "b", "b", "4", "p", "\x1b", "?"] {
        if keys == "\x1b" {
            press_code(&mut plain, KeyCode::Esc);
        } else {
            press(&mut plain, keys);
        }
        let terminal = draw(&mut plain, 120, 40);
        for cell in &terminal.backend().buffer().content {
            assert_eq!(
                (cell.fg, cell.bg),
                (Color::Reset, Color::Reset),
                "after {keys:?}: a coloured cell {:?}",
                cell.symbol()
            );
        }
    }
    // And the badges and the selection still read without colour.
    let mut plain = list_app();
    plain.config.color = false;
    let text = screen(&mut plain, 120, 40);
    for badge in ["VALID", "MISMATCH", "STALE", "500", "RESET", "[1 Overview]"] {
        assert!(text.contains(badge), "{badge} missing:\n{text}");
    }
}

#[test]
fn no_color_is_honoured_only_when_set_and_not_empty() {
    use std::ffi::OsStr;
    assert!(super::color_allowed(None));
    assert!(super::color_allowed(Some(OsStr::new(""))));
    assert!(!super::color_allowed(Some(OsStr::new("1"))));
}

#[test]
fn every_size_down_to_tiny_draws_without_panicking() {
    let mut app = timeline_app();
    for (width, height) in [(1, 1), (10, 5), (40, 10), (80, 24), (79, 23), (200, 60)] {
        for keys in ["1", "2", "3", "b", "b", "4", "p", "?"] {
            press(&mut app, keys);
            draw(&mut app, width, height);
            if keys == "p" || keys == "?" {
                press_code(&mut app, KeyCode::Esc);
            }
        }
    }
    // With deliveries in flight, and with more than fit.
    let mut app = in_flight_app();
    for arrivals in [2, 40] {
        for number in 3..arrivals {
            let mut arrival = crate::test_support::arrival(
                app.in_flight.now(),
                std::time::Duration::from_secs(number),
                "timeout",
            );
            arrival.number = number;
            app.in_flight.arrive(Arc::new(arrival));
        }
        for (width, height) in [(1, 1), (10, 5), (40, 7), (40, 10), (80, 24), (200, 60)] {
            draw(&mut app, width, height);
        }
    }
}

// ---------------------------------------------------------------------------
// Falling behind the store's broadcast.

fn test_loop(
    store_rx: tokio::sync::broadcast::Receiver<crate::store::StoreEvent>,
    store_path: Option<PathBuf>,
    log_dir: &std::path::Path,
) -> super::Loop {
    let (store, _) = crate::store::DeliveryStore::open(crate::store::StoreConfig::memory())
        .expect("a store in memory");
    test_loop_with(store, store_rx, store_path, log_dir)
}

fn test_loop_with(
    store: crate::store::DeliveryStore,
    store_rx: tokio::sync::broadcast::Receiver<crate::store::StoreEvent>,
    store_path: Option<PathBuf>,
    log_dir: &std::path::Path,
) -> super::Loop {
    super::Loop {
        store,
        store_rx,
        store_open: true,
        store_at: store_path.map(crate::store::Location::File),
        own_rows: None,
        replayer: Arc::new(|_, _, _| Box::pin(async { Err("not in this test".to_string()) })),
        curl_base: "http://127.0.0.1:4000".into(),
        log: super::LogFile::beside(Some(&log_dir.join("deliveries.jsonl"))),
        panics_seen: 0,
        danube: None,
        polls_rx: None,
        poll_due: false,
        public: None,
        earlier: super::earlier::Reading::default(),
    }
}

fn ids(app: &App) -> Vec<u64> {
    app.visible().map(|(_, d)| d.id).collect()
}

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "danube-hooks-tui-{name}-{}-{}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_lagging_dashboard_reads_what_it_missed_back_from_the_store() {
    use crate::store::{DeliveryStore, StoreConfig, StoreEvent};
    let dir = Dir::new("lag");
    let path = dir.0.join("deliveries.jsonl");
    let (store, _) = DeliveryStore::open(StoreConfig::at(&path)).unwrap();
    // A broadcast of 2 that gets 5: the receiver misses the first 3.
    let (events_tx, events_rx) = tokio::sync::broadcast::channel(2);
    for _ in 1..=5 {
        let stored = store
            .append(delivery(0, "2026-11-23T09:14:07.123Z", TOOL_COMPLETED))
            .await
            .unwrap();
        events_tx.send(StoreEvent::Delivery(stored, None)).unwrap();
    }
    store.sync().await.unwrap();
    let mut looping = test_loop(events_rx, Some(path), &dir.0);
    let mut app = app(false);
    looping.drain_store(&mut app).await;
    assert_eq!(
        ids(&app),
        vec![1, 2, 3, 4, 5],
        "read back, then no duplicate"
    );
    assert_eq!(app.counters.total, 5);
    assert_eq!(app.skipped, 0);
    // Read back as summaries, one record at a time: a body comes back
    // from the store when its delivery is shown.
    press(&mut app, "g");
    assert_eq!(app.selected().unwrap().id, 1);
    assert!(app.selected().unwrap().body.is_empty());
    assert_eq!(app.body_to_read_back(), Some(1));
    store.close().await;
}

#[tokio::test]
async fn a_lagging_dashboard_takes_the_deliveries_in_flight_from_the_store() {
    use std::time::{Duration, Instant};

    use crate::store::{DeliveryStore, StoreConfig, StoreEvent};
    let dir = Dir::new("lag-in-flight");
    let (store, _) = DeliveryStore::open(StoreConfig::memory()).unwrap();
    let now = Instant::now();
    let settled = store.arrive(crate::test_support::arrival(now, Duration::ZERO, "5s+200"));
    let held = store.arrive(crate::test_support::arrival(now, Duration::ZERO, "timeout"));
    // A broadcast of 2 that gets 4: the arrivals and the settle are lost.
    let (events_tx, events_rx) = tokio::sync::broadcast::channel(2);
    for event in [
        StoreEvent::Arrived(Arc::clone(settled.arrival())),
        StoreEvent::Arrived(Arc::clone(held.arrival())),
        StoreEvent::Settled(settled.arrival().number),
        StoreEvent::Warning("a warning".into()),
    ] {
        events_tx.send(event).unwrap();
    }
    drop(settled);
    let mut looping = test_loop_with(store.clone(), events_rx, None, &dir.0);
    let mut app = app(false);
    app.config.store_path = None;
    looping.drain_store(&mut app).await;
    let numbers: Vec<u64> = app.in_flight.iter().map(|a| a.number).collect();
    assert_eq!(
        numbers,
        [held.arrival().number],
        "the store's table as it is"
    );
    drop(held);
}

#[test]
fn the_response_tab_of_an_abandoned_delivery_says_the_client_went_away() {
    let mut app = app(false);
    let mut d = answered(
        delivery(1, "2026-11-23T09:14:07.123Z", TOOL_COMPLETED),
        "abandoned",
        None,
        "30s+200 #1",
    );
    d.response.delay_ms = 30_000;
    d.duration_ms = 10_012.0;
    app.ingest(Arc::new(d));
    press(&mut app, "4");
    let text = screen(&mut app, 160, 48);
    for part in [
        "ABANDONED",
        "10.0s",
        "the client went away while the answer waited",
    ] {
        assert!(text.contains(part), "{part:?} missing:\n{text}");
    }
    assert!(
        !text.contains("answered after Danube's 10 s deadline"),
        "{text}"
    );
}

#[tokio::test]
async fn without_a_store_a_lag_is_shown_as_skipped() {
    use crate::store::StoreEvent;
    let dir = Dir::new("skip");
    let (events_tx, events_rx) = tokio::sync::broadcast::channel(2);
    for id in 1..=5 {
        let d = delivery(id, "2026-11-23T09:14:07.123Z", TOOL_COMPLETED);
        events_tx
            .send(StoreEvent::Delivery(Arc::new(d), None))
            .unwrap();
    }
    events_tx
        .send(StoreEvent::Warning("disk \x1b[2J full".into()))
        .unwrap();
    let mut looping = test_loop(events_rx, None, &dir.0);
    let mut app = app(false);
    app.config.store_path = None;
    looping.drain_store(&mut app).await;
    assert_eq!(app.skipped, 4);
    assert_eq!(ids(&app), vec![5]);
    let text = screen(&mut app, 120, 30);
    assert!(text.contains("4 skipped"), "{text}");
    assert!(text.contains("store: disk \\x1b[2J full"), "{text}");
    let log = std::fs::read_to_string(dir.0.join("danube-hooks.log")).unwrap();
    assert!(log.contains("store: disk \\x1b[2J full"), "{log}");
}

/// A catch-up's progress comes as a notice: on the status line, escaped,
/// and not logged as a fault.
#[tokio::test]
async fn a_notice_is_told_on_the_status_line() {
    use crate::store::StoreEvent;
    let dir = Dir::new("notice");
    let (events_tx, events_rx) = tokio::sync::broadcast::channel(4);
    events_tx
        .send(StoreEvent::Notice(
            "catch-up: 2 of Danube's deliveries \x1b[2J never arrived".into(),
        ))
        .unwrap();
    let mut looping = test_loop(events_rx, None, &dir.0);
    let mut app = app(false);
    looping.drain_store(&mut app).await;
    let text = screen(&mut app, 120, 30);
    assert!(
        text.contains("catch-up: 2 of Danube's deliveries \\x1b[2J never arrived"),
        "{text}"
    );
    assert!(
        !dir.0.join("danube-hooks.log").exists() || {
            let log = std::fs::read_to_string(dir.0.join("danube-hooks.log")).unwrap();
            !log.contains("catch-up")
        }
    );
}

#[test]
fn the_detail_scrolls_within_its_content() {
    let mut app = timeline_app();
    press(&mut app, "3");
    let text = screen(&mut app, 80, 24);
    assert!(text.contains(" 1–10/12 "), "{text}");
    press_code(&mut app, KeyCode::Tab);
    press(&mut app, "jjjjj");
    let text = screen(&mut app, 80, 24);
    assert!(text.contains(" 3–12/12 "), "held at the end:\n{text}");
    assert!(
        !text.contains("195 bytes"),
        "the first row scrolled away:\n{text}"
    );
    press(&mut app, "k");
    assert!(screen(&mut app, 80, 24).contains(" 2–11/12 "));
    press(&mut app, "g");
    assert!(screen(&mut app, 80, 24).contains("195 bytes"));
    // Another delivery starts at the top.
    press(&mut app, "G");
    press_code(&mut app, KeyCode::Tab);
    press(&mut app, "k");
    assert!(screen(&mut app, 80, 24).contains(" 1–10/"));
}

#[test]
fn the_detail_rows_laid_out_are_the_rows_drawn_and_a_stale_scroll_is_fitted() {
    let mut app = timeline_app();
    press(&mut app, "3");
    press_code(&mut app, KeyCode::Tab);
    press(&mut app, "jjjjj");
    let small = Rect::new(0, 0, 80, 24);
    let detail = fit(&mut app, small);
    assert_eq!(app.detail_scroll(), 2, "held at the end at 80×24");
    // Taller, the end comes sooner: the scroll is past it until the layout
    // fits it, and the rows built are the last screenful.
    let tall = Rect::new(0, 0, 80, 40);
    let stale = app.detail_scroll();
    let detail_tall = fit(&mut app, tall);
    assert!(detail_tall.max_scroll() < stale);
    assert_eq!(app.detail_scroll(), detail_tall.max_scroll());
    // What the loop draws (the rows of the layout) is what a draw that
    // builds its own rows shows; rows built for another screen (80×24)
    // are built again, not drawn askew.
    let mut fresh = Buffer::empty(tall);
    ratatui::widgets::Widget::render(&app, tall, &mut fresh);
    for detail in [&detail_tall, &detail] {
        let mut drawn = Buffer::empty(tall);
        let screen = super::view::Screen { app: &app, detail };
        ratatui::widgets::Widget::render(screen, tall, &mut drawn);
        assert_eq!(drawn, fresh);
    }
}

use crate::test_support::nested;

#[test]
fn any_body_is_drawn_within_a_bounded_amount_of_work_and_says_it_is_cut() {
    // A body that would hold the body tab up for seconds: 1 MiB nested
    // 126 levels deep, 127 MB once pretty-printed; and one that is small
    // enough to re-indent but far larger indented.
    let deep = nested(126, 1024 * 1024);
    let indented = nested(60, 30 * 1024);
    let cases: [(&[u8], char, &[&str]); 4] = [
        (
            &deep,
            'p',
            &["the first 64 KiB shown", "not re-indented (over 64 KiB)"],
        ),
        (&deep, 'r', &["the first 64 KiB shown · raw"]),
        (&deep, 'h', &["the first 64 KiB shown · hex"]),
        (&indented, 'p', &["JSON re-indented"]),
    ];
    let area = Rect::new(0, 0, 80, 24);
    for (body, mode, notes) in cases {
        let mut app = app(false);
        let mut d = sample(1, body);
        d.body_size = body.len() as u64;
        app.ingest(Arc::new(d));
        press(&mut app, "3");
        let presses = match mode {
            'p' => "",
            'r' => "b",
            _ => "bb",
        };
        press(&mut app, presses);
        let text = screen(&mut app, 80, 24);
        for note in notes {
            assert!(text.contains(note), "mode {mode}: no {note:?} in\n{text}");
        }
        // Every row of the tab is counted each frame, and the rows on
        // screen built: bounded by what is shown, not by the body.
        let max_scroll = super::view::DetailRows::build(&app, area).max_scroll();
        assert!(max_scroll < 40_000, "mode {mode}: {max_scroll} rows");
        // The note at the end says the view is cut, and how to see it all.
        press_code(&mut app, KeyCode::Tab);
        press_code(&mut app, KeyCode::End);
        let end = screen(&mut app, 80, 24);
        let cut_note = if body.len() > 64 * 1024 {
            "… cut: the first 64 KiB"
        } else {
            "… cut: re-indented, it is over 256 KiB"
        };
        assert!(end.contains(cut_note), "mode {mode}: no cut note in\n{end}");
    }
}

// ---- Danube's side (`listen --webhook`, `--register`).

use crate::danube::model::DeliveryRecord;
use crate::danube::poller::Poll;

/// Danube's record of a delivery of `body`.
fn danube_record(
    id: &str,
    body: &str,
    status: &str,
    attempts: u32,
    answer: Option<u16>,
) -> DeliveryRecord {
    let payload: serde_json::Value = serde_json::from_str(body).unwrap();
    DeliveryRecord {
        id: id.into(),
        webhook_id: "wh_8f3a".into(),
        event_type: payload["event"].as_str().unwrap().into(),
        payload,
        status: status.into(),
        response_status: answer,
        response_body: None,
        attempts,
        delivered_at: Some("2026-11-23T09:14:37.210Z".into()),
        created_at: Some("2026-11-23T09:14:07.000Z".into()),
    }
}

fn danube_poll(result: Result<Vec<DeliveryRecord>, String>) -> Poll {
    Poll {
        webhook_id: "wh_8f3a".into(),
        result,
        limit: 100,
        webhook_created: None,
    }
}

/// When the dashboards of these tests began to watch: before every
/// delivery in them.
fn watched_since() -> chrono::DateTime<chrono::Utc> {
    "2026-11-23T09:00:00Z".parse().unwrap()
}

/// A retried delivery Danube saw succeed, one of which Danube made more
/// attempts than arrived, a forged one, and one that never arrived.
fn danube_app() -> App {
    let mut app = app(false);
    app.watch_danube("wh_8f3a".into(), watched_since());
    let forged = r#"{"event":"workflow.completed","timestamp":"2026-11-23T09:14:30.000000Z","data":{"workflow_id":"wf-evil"}}"#;
    let deliveries = [
        answered(
            delivery(1, "2026-11-23T09:14:07.123Z", TOOL_COMPLETED),
            "status",
            Some(500),
            "500,200 #1",
        ),
        answered(
            delivery(2, "2026-11-23T09:14:12.130Z", TOOL_COMPLETED),
            "status",
            Some(200),
            "500,200 #2",
        ),
        answered(
            delivery(3, "2026-11-23T09:14:20.000Z", WORKFLOW_FAILED),
            "status",
            Some(500),
            "500,200 #1",
        ),
        mismatch(delivery(4, "2026-11-23T09:14:31.000Z", forged)),
    ];
    for (i, mut d) in deliveries.into_iter().enumerate() {
        d.attempt = if i == 1 { 2 } else { 1 };
        app.ingest(Arc::new(d));
    }
    app.apply_danube(&danube_poll(Ok(vec![
        danube_record(
            "dlv_never",
            r#"{"event":"workflow.completed","timestamp":"2026-11-23T09:14:40.000000Z","data":{}}"#,
            "failed",
            3,
            Some(502),
        ),
        danube_record("dlv_wf", WORKFLOW_FAILED, "failed", 3, Some(502)),
        danube_record("dlv_tool", TOOL_COMPLETED, "success", 2, Some(200)),
    ])));
    app
}

#[test]
fn a_delivery_danube_made_before_the_dashboard_watched_is_not_never_arrived() {
    // Watched from later on, a delivery Danube made before that that never arrived may have arrived
    // before (in an earlier run, kept in the store): not counted.
    let mut later = app(false);
    later.watch_danube("wh_8f3a".into(), "2026-11-23T10:00:00Z".parse().unwrap());
    later.apply_danube(&danube_poll(Ok(vec![danube_record(
        "dlv_never",
        r#"{"event":"workflow.completed","timestamp":"2026-11-23T09:14:40.000000Z","data":{}}"#,
        "failed",
        3,
        Some(502),
    )])));
    assert_eq!(later.danube().unwrap().never_arrived(), 0);
}

#[test]
fn a_delivery_from_before_the_webhook_existed_is_none_of_its_own() {
    let mut app = app(false);
    app.watch_danube("wh_8f3a".into(), watched_since());
    // A request sent by hand at 09:14:01, before the webhook was made.
    let by_hand = r#"{"event":"workflow.completed","timestamp":"2026-11-23T09:14:01.000000Z","data":{"workflow_id":"wf-1"}}"#;
    app.ingest(Arc::new(answered(
        delivery(1, "2026-11-23T09:14:01.000Z", by_hand),
        "status",
        Some(200),
        "200",
    )));
    app.ingest(Arc::new(answered(
        delivery(2, "2026-11-23T09:14:07.123Z", TOOL_COMPLETED),
        "status",
        Some(200),
        "200",
    )));
    let mut poll = danube_poll(Ok(vec![danube_record(
        "dlv_tool",
        TOOL_COMPLETED,
        "success",
        1,
        Some(200),
    )]));
    // Not knowing when the webhook was made, it is in the window.
    app.apply_danube(&poll);
    assert!(screen(&mut app, 80, 24).contains("unknown!"));

    poll.webhook_created = Some(at("2026-11-23T09:14:05.000Z"));
    app.apply_danube(&poll);
    let text = screen(&mut app, 80, 24);
    assert!(!text.contains("unknown"), "{text}");
    assert!(text.contains("ok 1/3"), "{text}");
    assert_eq!(app.selected().unwrap().id, 2);
    press(&mut app, "k");
    assert_eq!(app.selected().unwrap().id, 1);
    let text = screen(&mut app, 80, 24);
    assert!(
        text.contains("arrived before webhook wh_8f3a was created"),
        "{text}"
    );
    // Later polls need not read the time again.
    poll.webhook_created = None;
    app.apply_danube(&poll);
    assert!(!screen(&mut app, 80, 24).contains("unknown"));
}

#[test]
fn danube_column_and_overview_line() {
    let mut app = danube_app();
    let text = screen(&mut app, 80, 24);
    for badge in ["ok 2/3", "fail 3!", "unknown!"] {
        assert!(text.contains(badge), "{badge}:\n{text}");
    }
    assert!(text.contains("Danube: 1 never arrived"), "{text}");
    snap("danube_unknown", &mut app);
    press(&mut app, "k");
    assert_eq!(app.selected().unwrap().id, 3);
    snap("danube_finding", &mut app);
    press(&mut app, "kk");
    assert_eq!(app.selected().unwrap().id, 1);
    let text = screen(&mut app, 80, 24);
    assert!(
        text.contains("success after 2 attempts, recorded 200 at 09:14:37.210"),
        "{text}"
    );
}

#[test]
fn danube_column_fits_80_columns_beside_the_forward_one() {
    let mut app = timeline_app();
    app.watch_danube("wh_8f3a".into(), watched_since());
    app.apply_danube(&danube_poll(Ok(vec![danube_record(
        "dlv_tool",
        TOOL_COMPLETED,
        "success",
        3,
        Some(201),
    )])));
    let text = screen(&mut app, 80, 24);
    let header = text.lines().find(|l| l.contains("DANUBE")).unwrap();
    assert!(
        header.contains("FORWARD") && header.contains("DURATION"),
        "{text}"
    );
    assert!(text.contains("ok 3/3 "), "{text}");
    snap("danube_forwarding", &mut app);
}

#[test]
fn danube_errors_go_to_the_status_line_and_d_polls() {
    let mut app = app(false);
    // No webhook: D says how to get one, and asks nothing.
    let effect = app.handle_key(KeyEvent::new(KeyCode::Char('D'), KeyModifiers::SHIFT));
    assert_eq!(effect, super::app::Effect::None);
    assert!(app.status().unwrap().text.contains("--webhook ID"));

    app.watch_danube("wh_8f3a".into(), watched_since());
    app.ingest(Arc::new(delivery(
        1,
        "2026-11-23T09:14:07.123Z",
        TOOL_COMPLETED,
    )));
    let text = screen(&mut app, 80, 24);
    assert!(text.contains("asking Danube for webhook wh_8f3a"), "{text}");
    app.apply_danube(&danube_poll(Err(
        "Danube refused the credentials key dk_li… (401: Invalid API key); log in again".into(),
    )));
    let status = app.status().unwrap();
    assert_eq!(status.kind, StatusKind::Error);
    assert!(status.text.contains("401") && status.text.contains("still polling"));
    // The next answer that is a log ends the error.
    app.apply_danube(&danube_poll(Ok(vec![])));
    assert_eq!(app.status(), None);

    let effect = app.handle_key(KeyEvent::new(KeyCode::Char('D'), KeyModifiers::SHIFT));
    assert_eq!(effect, super::app::Effect::PollDanube);
    app.apply_danube(&danube_poll(Ok(vec![danube_record(
        "dlv_tool",
        TOOL_COMPLETED,
        "success",
        1,
        Some(200),
    )])));
    let status = app.status().unwrap();
    assert_eq!(status.kind, StatusKind::Success);
    assert!(
        status
            .text
            .contains("1 delivery of webhook wh_8f3a read, 0 findings"),
        "{}",
        status.text
    );
}

#[test]
fn danube_matches_deliveries_whose_body_left_memory() {
    // A byte budget the first body alone passes: it is dropped from
    // memory when the second delivery comes, its summary kept.
    let big = format!(
        r#"{{"event":"tool.execution.completed","timestamp":"2026-11-23T09:14:07.123456Z","data":{{"output":"{}"}}}}"#,
        "x".repeat(100_000)
    );
    let mut config = config(false);
    config.history_bytes = 50_000;
    let mut app = App::new(config, PolicyHandle::new(Policy::default_for(false)));
    app.watch_danube("wh_8f3a".into(), watched_since());
    app.ingest(Arc::new(delivery(1, "2026-11-23T09:14:07.123Z", &big)));
    app.ingest(Arc::new(delivery(
        2,
        "2026-11-23T09:14:08.000Z",
        WORKFLOW_FAILED,
    )));
    press(&mut app, "k");
    assert_eq!(app.selected().unwrap().id, 1);
    assert!(
        app.selected().unwrap().body.is_empty(),
        "the body left memory"
    );
    app.apply_danube(&danube_poll(Ok(vec![danube_record(
        "dlv_tool",
        &big,
        "success",
        1,
        Some(200),
    )])));
    assert!(matches!(
        app.danube_mark(1),
        Some(super::danube_side::DanubeMark::Row(row)) if row.danube.as_ref().unwrap().id == "dlv_tool"
    ));
}

/// Deliveries of two earlier starts, read from the store after this
/// start's first delivery had arrived, and the starts noted for them.
fn history_app() -> App {
    use crate::store::Start;
    let mut app = app(false);
    app.start_at(5);
    app.ingest(Arc::new(delivery(
        5,
        "2026-11-23T10:00:01.000Z",
        TOOL_COMPLETED,
    )));
    let mut retried = delivery(3, "2026-11-23T09:40:00.000Z", WORKFLOW_FAILED);
    retried.attempt = 2;
    let earlier = [
        delivery(1, "2026-11-23T09:14:07.123Z", TOOL_COMPLETED),
        mismatch(answered(
            delivery(2, "2026-11-23T09:14:09.456Z", WORKFLOW_FAILED),
            "status",
            Some(500),
            "500 #1",
        )),
        retried,
        delivery(4, "2026-11-23T09:41:00.000Z", TOOL_COMPLETED),
    ];
    let start = |first_id, time| Start {
        first_id,
        at: at(time),
        listener: None,
    };
    let starts = vec![
        start(1, "2026-11-23T09:14:00.000Z"),
        start(3, "2026-11-23T09:39:58.000Z"),
        start(5, "2026-11-23T10:00:00.000Z"),
    ];
    app.take_earlier(super::earlier::Earlier::new(
        earlier.into_iter().map(Arc::new).collect(),
        starts,
        5,
    ));
    app
}

/// The history the dashboard opens with: a divider above the first row of
/// each start, this start's included; the header counts this start's
/// deliveries apart from the earlier ones; a retry's group is whole
/// across the restart.
#[test]
fn history_from_earlier_starts_with_a_divider_at_each() {
    let mut app = history_app();
    assert_eq!(app.history_len(), 5);
    assert_eq!(app.selected().unwrap().id, 5, "the newest is selected");
    let text = screen(&mut app, 160, 48);
    for divider in [
        "── listener started 2026-11-23 09:14:00 ──",
        "── listener started 2026-11-23 09:39:58 ──",
        "── listener started 2026-11-23 10:00:00 ──",
    ] {
        assert!(text.contains(divider), "{divider}:\n{text}");
    }
    assert!(
        text.contains("1 total") && text.contains("│ 4 earlier"),
        "{text}"
    );
    press(&mut app, "kk");
    assert_eq!(app.selected().unwrap().id, 3);
    let group: Vec<u64> = app
        .group_of(app.selected().unwrap())
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(group, [2, 3], "the attempts of a group read from the store");
    snap("history_dividers", &mut app);
}

/// The divider rows take rows of their own: at every height the selected
/// row stays on screen, the newest and the oldest alike.
#[test]
fn dividers_never_push_the_selection_off_the_list() {
    let mut app = history_app();
    // From 14 rows the list has one of its own.
    for height in 14..=30 {
        for key in ["G", "g"] {
            press(&mut app, key);
            let id = app.selected().unwrap().id;
            let terminal = draw(&mut app, 80, height);
            let buffer = terminal.backend().buffer();
            let selected: Vec<String> = (0..height)
                .filter(|&y| buffer[(0, y)].bg == Color::DarkGray)
                .map(|y| (0..80).map(|x| buffer[(x, y)].symbol()).collect::<String>())
                // The detail's title is on the same grey.
                .filter(|row| !row.contains("[1 Overview]"))
                .collect();
            assert_eq!(selected.len(), 1, "height {height}, {key}: {selected:?}");
            assert!(
                selected[0].contains(&format!("#{id} ")),
                "height {height}, {key}: {selected:?}"
            );
        }
    }
}

/// `dashboard` on a shared store: no listener of its own (the header names
/// the store's URL without its password, and where replays go), every
/// listener's deliveries with a LISTENER column (escaped, cut to its
/// width), and `p` sets no policy of anyone's.
#[test]
fn a_viewer_of_a_shared_store_shows_whose_each_delivery_is() {
    let mut app = App::new(
        AppConfig {
            listen_url: "postgres://hooks@db.internal:5432/hooks".into(),
            store_path: None,
            shared_store: Some("postgres://hooks@db.internal:5432/hooks".into()),
            forward_url: Some("http://localhost:3000/mine".into()),
            viewer: true,
            ..config(false)
        },
        PolicyHandle::new(Policy::default_for(false)),
    );
    let listeners = [
        "ann@laptop",
        "bob@ci-runner-7.staging.internal",
        "\u{1b}[2Jeve\u{202e}",
    ];
    for (i, listener) in listeners.iter().enumerate() {
        let mut d = delivery(
            i as u64 + 2,
            "2026-11-23T09:14:07.123Z",
            if i == 1 {
                WORKFLOW_FAILED
            } else {
                TOOL_COMPLETED
            },
        );
        d.listener = Some((*listener).to_owned());
        app.ingest(Arc::new(d));
    }
    // A row committed after a newer one was shown goes in its place.
    let mut late = delivery(1, "2026-11-23T09:14:06.000Z", TOOL_COMPLETED);
    late.listener = Some("bob@ci-runner-7.staging.internal".into());
    app.ingest(Arc::new(late));
    snap("viewer", &mut app);
    let text = screen(&mut app, 80, 24);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text}"
    );
    assert!(
        text.contains("LISTENER") && text.contains("ann@laptop"),
        "{text}"
    );
    press(&mut app, "p");
    assert!(
        app.status().unwrap().text.starts_with("no listener here"),
        "{:?}",
        app.status()
    );
    assert!(matches!(app.mode, super::app::Mode::Normal));
}

/// `listen` on a shared store reads back only its own rows after a lag:
/// the others' are theirs to show (here a file holds both, standing in
/// for the table, whose reader gives every listener's rows).
#[tokio::test]
async fn a_lagging_listener_reads_back_only_its_own_rows() {
    use crate::store::{DeliveryStore, StoreConfig, StoreEvent};
    let dir = Dir::new("lag-own");
    let path = dir.0.join("deliveries.jsonl");
    let (store, _) = DeliveryStore::open(StoreConfig::at(&path)).unwrap();
    let (events_tx, events_rx) = tokio::sync::broadcast::channel(2);
    for n in 1..=6 {
        let mut d = delivery(0, "2026-11-23T09:14:07.123Z", TOOL_COMPLETED);
        d.listener = Some(if n % 2 == 0 { "ann@laptop" } else { "bob@ci" }.into());
        let stored = store.append(d).await.unwrap();
        if n % 2 == 0 {
            events_tx.send(StoreEvent::Delivery(stored, None)).unwrap();
        }
    }
    store.sync().await.unwrap();
    let mut looping = test_loop(events_rx, Some(path), &dir.0);
    looping.own_rows = Some("ann@laptop".into());
    let mut app = app(false);
    looping.drain_store(&mut app).await;
    assert_eq!(
        ids(&app),
        vec![2, 4, 6],
        "bob's rows are not this listener's"
    );
}

#[test]
fn a_resync_on_a_shared_store_reads_again_below_the_last_id_what_batches_in_flight_hold() {
    use crate::store::postgres::{MOST_IN_FLIGHT, resync_after};
    assert_eq!(
        resync_after(10_000, false),
        10_000,
        "a file's ids only grow"
    );
    assert_eq!(resync_after(10_000, true), 10_000 - MOST_IN_FLIGHT);
    assert_eq!(resync_after(5, true), 0);
}
