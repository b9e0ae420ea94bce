//! `webhooks`: Danube's webhooks through its API (SPEC §11), as the SDKs
//! have them. `list` prints a table, `create`, `update` and `delete` a short
//! summary; `--json` prints Danube's JSON instead. Every text from Danube is
//! escaped before it reaches the terminal.
//!
//! `create` is the one place a signing secret is printed whole: Danube
//! shows it only in its answer to the create, so the user must see it once
//! (or keep it with `--save`). `update` and `delete` are the user's own
//! explicit commands and work on any id; they keep a saved copy in step.

use std::fmt::Write as _;

use anyhow::Context as _;

use crate::cli::{
    UsageError, WebhooksCommand, WebhooksCreateArgs, WebhooksDeleteArgs, WebhooksListArgs,
    WebhooksUpdateArgs,
};
use crate::commands::Outcome;
use crate::danube::api::is_local_danube;
use crate::danube::credentials;
use crate::danube::model::{CreatedWebhook, Webhook, WebhookChange};
use crate::danube::saved_webhooks::{self, Origin, SavedWebhook, Scope};
use crate::display::escape_line;
use crate::events::EVENT_TYPES;

pub(crate) fn run(command: &WebhooksCommand) -> anyhow::Result<Outcome> {
    match command {
        WebhooksCommand::List(args) => list(args),
        WebhooksCommand::Create(args) => create(args),
        WebhooksCommand::Update(args) => update(args),
        WebhooksCommand::Delete(args) => delete(args),
    }
}

/// `value` as one line of JSON, terminal-safe: `serde_json` alone escapes
/// C0 controls but writes DEL, C1 and the bidi controls of a description
/// Danube (or whoever answers as Danube) sent as they are.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    crate::commands::out_line(&crate::display::to_json_line(value))
}

fn list(args: &WebhooksListArgs) -> anyhow::Result<Outcome> {
    let api = crate::commands::danube_api(&args.api)?;
    let webhooks = crate::commands::runtime()?.block_on(api.list_webhooks())?;
    if args.json {
        print_json(&webhooks)?;
    } else {
        crate::commands::out(&table(&webhooks))?;
    }
    Ok(Outcome::Success)
}

fn create(args: &WebhooksCreateArgs) -> anyhow::Result<Outcome> {
    let (change, unknown) = create_change(args)?;
    if args.save {
        // A webhooks.json that cannot be read now would lose the secret
        // after the create: say so while nothing has been made yet.
        saved_webhooks::load(&credentials::config_dir()?)
            .context("--save cannot keep the secret, so nothing was created")?;
    }
    warn_unknown(&unknown);
    let api = crate::commands::danube_api(&args.api)?;
    let created = crate::commands::runtime()?.block_on(api.create_webhook(&change))?;
    // Saved before anything is printed, but the secret is printed whatever
    // came of it: Danube will never show it again.
    let kept = args.save.then(|| save_created(&Scope::of(&api), &created));
    let shown = kept.as_ref().and_then(|kept| kept.as_ref().ok());
    let printed = if args.json {
        let printed = print_json(&created);
        eprintln!("danube-hooks: {}", once_note(shown));
        printed
    } else {
        crate::commands::out(&created_text(&created, shown))
    };
    // A secret that could not be saved is told even when stdout is gone.
    if let Some(Err(err)) = kept {
        return Err(err.context(
            "the webhook was created and its secret is shown above, but it could not be saved: \
             copy the secret now",
        ));
    }
    printed?;
    Ok(Outcome::Success)
}

/// Where `--save` kept a secret, and the secret as it may be shown.
#[derive(Debug)]
struct Kept {
    path: std::path::PathBuf,
    fingerprint: String,
}

/// Keep the created webhook in `webhooks.json` (0600), in the scope
/// (API and organization) it was made in; its path and the secret's
/// fingerprint.
fn save_created(scope: &Scope, created: &CreatedWebhook) -> anyhow::Result<Kept> {
    let saved = SavedWebhook::of_created(scope, created, Origin::Create);
    let fingerprint = saved.fingerprint();
    let path = saved_webhooks::upsert(&credentials::config_dir()?, saved)?;
    Ok(Kept { path, fingerprint })
}

fn update(args: &WebhooksUpdateArgs) -> anyhow::Result<Outcome> {
    let id = webhook_id(&args.id)?;
    let (change, unknown) = update_change(args)?;
    warn_unknown(&unknown);
    let api = crate::commands::danube_api(&args.api)?;
    let webhook = crate::commands::runtime()?.block_on(api.update_webhook(id, &change))?;
    let printed = if args.json {
        print_json(&webhook)
    } else {
        crate::commands::out(&format!(
            "Updated webhook {}\n{}",
            escape_line(&webhook.id),
            fields_text(&webhook)
        ))
    };
    // The saved copy follows Danube whether or not stdout is still read.
    resave_updated(&Scope::of(&api), id, &webhook).context(
        "the webhook was updated in Danube, but its saved copy in webhooks.json could not be \
         brought in step",
    )?;
    printed?;
    Ok(Outcome::Success)
}

/// A saved webhook takes the URL and events Danube now has, so `listen`
/// and `deliveries` see what Danube does; the secret stays.
fn resave_updated(scope: &Scope, id: &str, webhook: &Webhook) -> anyhow::Result<()> {
    let dir = credentials::config_dir()?;
    let all = saved_webhooks::load(&dir)?;
    if let Some(saved) = saved_webhooks::find(&all, scope, id) {
        let mut saved = saved.clone();
        saved.url.clone_from(&webhook.url);
        saved.events.clone_from(&webhook.events);
        saved_webhooks::upsert(&dir, saved)?;
    }
    Ok(())
}

fn delete(args: &WebhooksDeleteArgs) -> anyhow::Result<Outcome> {
    let id = webhook_id(&args.id)?;
    let api = crate::commands::danube_api(&args.api)?;
    crate::commands::runtime()?.block_on(api.delete_webhook(id))?;
    let dir = credentials::config_dir()?;
    let all = saved_webhooks::load(&dir)
        .context("the webhook was deleted in Danube, but webhooks.json could not be read")?;
    let scope = Scope::of(&api);
    let saved = saved_webhooks::find(&all, &scope, id).cloned();
    match &saved {
        Some(saved) => {
            saved_webhooks::remove(&dir, &scope, id).context(
                "the webhook was deleted in Danube, but its saved secret could not be removed \
                 from webhooks.json",
            )?;
            crate::commands::out_line(&format!(
                "Deleted webhook {} ({}).\nIts saved secret ({}) was removed from {}.",
                escape_line(id),
                escape_line(&saved.url),
                saved.fingerprint(),
                saved_webhooks::file_in(&dir).display()
            ))?;
        }
        None => crate::commands::out_line(&format!("Deleted webhook {}.", escape_line(id)))?,
    }
    Ok(Outcome::Success)
}

/// An id to put in a path: not blank (`/v1/webhooks/` is the list).
fn webhook_id(id: &str) -> Result<&str, UsageError> {
    let id = id.trim();
    if id.is_empty() {
        return Err(UsageError::new(
            "the webhook ID is empty; give one from `danube-hooks webhooks list`",
        ));
    }
    Ok(id)
}

/// A target URL Danube will take: `https://` and a host. Checked before
/// sending, since Danube refuses anything else with a 422; a local Danube
/// (`emulate`, whose `--allow-http` takes an http:// receiver) keeps its
/// own rule, so for `local_danube` only the URL's form is checked.
fn target_url(url: &str, local_danube: bool) -> Result<String, UsageError> {
    let bad = |why: &str| {
        UsageError::new(format!(
            "--url {}: {why}",
            escape_line(&crate::display::truncate(url, 200))
        ))
    };
    if !local_danube && !url.starts_with("https://") {
        return Err(bad(
            "Danube delivers only to https:// URLs; point a tunnel at the listener (e.g. \
             `ngrok http 4000`) and give its https:// URL, e.g. https://abc.ngrok.app/webhooks/danube",
        ));
    }
    crate::http::check_url(url).map_err(|err| bad(&err.to_string()))?;
    Ok(url.to_owned())
}

/// The event types to send, in the order given, each once, and those of
/// them Danube did not publish. Nothing given means all five. A type not
/// among the five is sent anyway, since Danube may add types before this
/// tool knows them; the caller warns. A name no event could have (blank,
/// spaces, control characters) is refused.
fn event_list(given: &[String]) -> Result<(Vec<String>, Vec<String>), UsageError> {
    if given.is_empty() {
        return Ok((EVENT_TYPES.map(str::to_owned).to_vec(), Vec::new()));
    }
    let mut events: Vec<String> = Vec::new();
    for event in given {
        let event = event.trim();
        if event.is_empty() || event.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UsageError::new(format!(
                "--event '{}' is not an event type; Danube's are: {}",
                escape_line(event),
                EVENT_TYPES.join(", ")
            )));
        }
        if !events.iter().any(|e| e == event) {
            events.push(event.to_owned());
        }
    }
    let unknown = events
        .iter()
        .filter(|e| !EVENT_TYPES.contains(&e.as_str()))
        .cloned()
        .collect();
    Ok((events, unknown))
}

fn warn_unknown(unknown: &[String]) {
    for event in unknown {
        eprintln!(
            "danube-hooks: warning: --event {} is not one of Danube's published event types ({}); \
             sending it anyway in case Danube added it (Danube refuses it if not)",
            escape_line(event),
            EVENT_TYPES.join(", ")
        );
    }
}

/// What `create` sends, and the event types to warn about.
fn create_change(args: &WebhooksCreateArgs) -> Result<(WebhookChange, Vec<String>), UsageError> {
    let url = target_url(&args.url, is_local_danube(args.api.url()))?;
    let (events, unknown) = event_list(&args.events)?;
    let change = WebhookChange {
        url: Some(url),
        events: Some(events),
        is_active: None,
        description: args.description.clone(),
    };
    Ok((change, unknown))
}

/// What `update` sends: only the fields given, and at least one.
fn update_change(args: &WebhooksUpdateArgs) -> Result<(WebhookChange, Vec<String>), UsageError> {
    let local_danube = is_local_danube(args.api.url());
    let url = args
        .url
        .as_deref()
        .map(|url| target_url(url, local_danube))
        .transpose()?;
    let (events, unknown) = if args.events.is_empty() {
        (None, Vec::new())
    } else {
        let (events, unknown) = event_list(&args.events)?;
        (Some(events), unknown)
    };
    let change = WebhookChange {
        url,
        events,
        is_active: args.active,
        description: args.description.clone(),
    };
    if change == WebhookChange::default() {
        return Err(UsageError::new(format!(
            "nothing to change for webhook {}: give at least one of --url, --event, --active \
             true|false, --description",
            escape_line(&args.id)
        )));
    }
    Ok((change, unknown))
}

/// The note that goes with the secret: shown once, and where it was kept.
fn once_note(kept: Option<&Kept>) -> String {
    match kept {
        Some(Kept { path, fingerprint }) => format!(
            "the secret is shown once by Danube; it is saved ({fingerprint}) in {} (mode 0600) \
             for `listen` and `deliveries`",
            path.display()
        ),
        None => "the secret is shown once — copy it now, or use --save to keep it (mode 0600)"
            .to_owned(),
    }
}

/// A created webhook, its secret whole (the only place it is printed),
/// and the note on keeping it.
fn created_text(created: &CreatedWebhook, kept: Option<&Kept>) -> String {
    format!(
        "Created webhook {}\n{}  secret       {}\n\n{}.\n",
        escape_line(&created.webhook.id),
        fields_text(&created.webhook),
        escape_line(&created.secret),
        capitalized(&once_note(kept))
    )
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A webhook's fields, one indented line each, escaped.
fn fields_text(webhook: &Webhook) -> String {
    let mut out = format!(
        "  url          {}\n  events       {}\n  active       {}\n",
        escape_line(&webhook.url),
        escape_line(&webhook.events.join(", ")),
        if webhook.is_active { "yes" } else { "paused" }
    );
    if let Some(description) = webhook.description.as_deref().filter(|d| !d.is_empty()) {
        let _ = writeln!(out, "  description  {}", escape_line(description));
    }
    out
}

/// The webhooks as aligned columns, each cell escaped onto one line.
fn table(webhooks: &[Webhook]) -> String {
    if webhooks.is_empty() {
        return "No webhooks. Create one in Danube, or with `listen --register`.\n".to_owned();
    }
    let header = ["ID", "ACTIVE", "EVENTS", "URL", "DESCRIPTION"].map(str::to_owned);
    let rows: Vec<[String; 5]> = webhooks
        .iter()
        .map(|w| {
            [
                escape_line(&w.id).into_owned(),
                if w.is_active { "yes" } else { "paused" }.to_owned(),
                escape_line(&w.events.join(",")).into_owned(),
                escape_line(&w.url).into_owned(),
                escape_line(w.description.as_deref().unwrap_or("")).into_owned(),
            ]
        })
        .collect();
    let mut out = String::new();
    for line in crate::commands::aligned(&[&[header], rows.as_slice()].concat()) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> WebhooksCommand {
        let words = ["danube-hooks", "webhooks"].iter().chain(args);
        match Cli::try_parse_from(words).unwrap().command {
            Command::Webhooks(command) => command,
            other => panic!("parsed as {other:?}"),
        }
    }

    fn create_of(args: &[&str]) -> Result<(WebhookChange, Vec<String>), UsageError> {
        let WebhooksCommand::Create(args) = parse(args) else {
            panic!("not a create")
        };
        create_change(&args)
    }

    fn update_of(args: &[&str]) -> Result<(WebhookChange, Vec<String>), UsageError> {
        let WebhooksCommand::Update(args) = parse(args) else {
            panic!("not an update")
        };
        update_change(&args)
    }

    const URL: &str = "https://abc.ngrok.app/webhooks/danube";

    #[test]
    fn create_sends_all_five_events_unless_told() {
        let (change, unknown) = create_of(&["create", "--url", URL]).unwrap();
        assert_eq!(
            change,
            WebhookChange {
                url: Some(URL.into()),
                events: Some(EVENT_TYPES.map(str::to_owned).to_vec()),
                is_active: None,
                description: None,
            }
        );
        assert!(unknown.is_empty());
        let body = serde_json::to_value(&change).unwrap();
        assert_eq!(body.as_object().unwrap().len(), 2, "{body}");

        let (change, unknown) = create_of(&[
            "create",
            "--url",
            URL,
            "--event",
            "workflow.failed",
            "--event",
            " workflow.failed",
            "--event",
            "workflow.paused",
            "--description",
            "laptop",
        ])
        .unwrap();
        assert_eq!(
            change.events.unwrap(),
            ["workflow.failed", "workflow.paused"]
        );
        assert_eq!(unknown, ["workflow.paused"]);
        assert_eq!(change.description.as_deref(), Some("laptop"));
    }

    #[test]
    fn create_refuses_what_danube_would_refuse() {
        for (url, why) in [
            ("http://abc.ngrok.app/x", "only to https:// URLs"),
            ("HTTPS://abc.ngrok.app/x", "only to https:// URLs"),
            ("abc.ngrok.app", "only to https:// URLs"),
            ("https://", "not a usable URL"),
            ("https://me@abc.ngrok.app/x", "user name"),
            (
                "https://abc.ngrok.app/\u{1b}[2J",
                "--url https://abc.ngrok.app/\\x1b[2J",
            ),
        ] {
            let err = create_of(&["create", "--url", url])
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{url}: {err}");
            assert!(!err.contains('\u{1b}'), "{err:?}");
        }
        for event in ["", " ", "workflow completed", "a\u{7}b"] {
            let err = create_of(&["create", "--url", URL, "--event", event])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("is not an event type") && err.contains("workflow.completed"),
                "{event:?}: {err}"
            );
        }
    }

    #[test]
    fn a_local_danube_keeps_its_own_rule_on_http_receivers() {
        let receiver = "http://127.0.0.1:3000/webhooks/danube";
        let local = ["--api-url", "http://127.0.0.1:4200"];
        let (change, _) =
            create_of(&[&["create", "--url", receiver][..], &local].concat()).unwrap();
        assert_eq!(change.url.as_deref(), Some(receiver));
        let (change, _) =
            update_of(&[&["update", "wh_1", "--url", receiver][..], &local].concat()).unwrap();
        assert_eq!(change.url.as_deref(), Some(receiver));
        // Still a URL it can post to.
        for (url, why) in [
            ("127.0.0.1:3000", "http:// or https://"),
            ("http://me@127.0.0.1:3000/", "user name"),
        ] {
            let err = create_of(&[&["create", "--url", url][..], &local].concat())
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
        // Danube itself, and any https:// API, only ever take https://.
        for api in ["https://api.danubeai.com", "https://127.0.0.1:4200"] {
            let err = create_of(&["create", "--url", receiver, "--api-url", api])
                .unwrap_err()
                .to_string();
            assert!(err.contains("only to https:// URLs"), "{api}: {err}");
        }
    }

    #[test]
    fn update_sends_only_the_fields_given() {
        let table: [(&[&str], serde_json::Value); 4] = [
            (
                &["update", "wh_1", "--active", "false"],
                serde_json::json!({"is_active": false}),
            ),
            (
                &["update", "wh_1", "--url", URL],
                serde_json::json!({"url": URL}),
            ),
            (
                &["update", "wh_1", "--event", "tool.execution.failed"],
                serde_json::json!({"events": ["tool.execution.failed"]}),
            ),
            (
                &["update", "wh_1", "--description", "", "--active", "true"],
                serde_json::json!({"description": "", "is_active": true}),
            ),
        ];
        for (args, want) in table {
            let (change, _) = update_of(args).unwrap();
            assert_eq!(serde_json::to_value(&change).unwrap(), want, "{args:?}");
        }
        let err = update_of(&["update", "wh_1"]).unwrap_err().to_string();
        assert!(
            err.contains("nothing to change for webhook wh_1")
                && ["--url", "--event", "--active", "--description"]
                    .iter()
                    .all(|flag| err.contains(flag)),
            "{err}"
        );
        let err = update_of(&["update", "wh_1", "--url", "http://x.test"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("https://"), "{err}");
        assert!(webhook_id("  ").is_err());
        assert_eq!(webhook_id(" wh_1 ").unwrap(), "wh_1");
    }

    #[test]
    fn the_secret_is_shown_once_with_what_to_do() {
        let created = CreatedWebhook {
            webhook: webhook("wh_1", true, Some("laptop \u{1b}[2J")),
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        };
        let text = created_text(&created, None);
        assert_eq!(
            text.matches("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .count(),
            1
        );
        assert!(
            text.contains("shown once — copy it now, or use --save"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "{text:?}");
        let kept = Kept {
            path: "/home/me/.config/danube-hooks/webhooks.json".into(),
            fingerprint: "whsec_…LaSw".into(),
        };
        let text = created_text(&created, Some(&kept));
        assert_eq!(
            text.matches("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .count(),
            1
        );
        assert!(
            text.contains(
                "saved (whsec_…LaSw) in /home/me/.config/danube-hooks/webhooks.json (mode 0600)"
            ),
            "{text}"
        );
    }

    fn webhook(id: &str, active: bool, description: Option<&str>) -> Webhook {
        Webhook {
            id: id.into(),
            url: "https://abc.ngrok.app/webhooks/danube".into(),
            events: vec!["tool.executed".into(), "workflow.completed".into()],
            is_active: active,
            description: description.map(str::to_owned),
            created_at: None,
            updated_at: None,
        }
    }

    #[test]
    fn table_aligns_and_escapes() {
        let text = table(&[
            webhook("wh_1", true, Some("local \u{1b}[2Jtunnel")),
            webhook("wh_22", false, None),
        ]);
        assert!(!text.contains('\u{1b}'), "{text:?}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID     ACTIVE  EVENTS"), "{text}");
        assert!(
            lines[1].starts_with("wh_1   yes     tool.executed,workflow.completed"),
            "{text}"
        );
        assert!(lines[2].starts_with("wh_22  paused  "), "{text}");
        assert!(table(&[]).starts_with("No webhooks."));
    }
}
