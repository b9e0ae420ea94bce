//! `webhooks`: Danube's webhooks through its API (SPEC §11). `list` prints
//! a table, or Danube's JSON with `--json`. Every text from Danube is
//! escaped before it reaches the terminal.

use anyhow::Context as _;

use crate::cli::{WebhooksCommand, WebhooksListArgs};
use crate::commands::Outcome;
use crate::danube::api::Webhook;
use crate::display::escape_line;

pub fn run(command: &WebhooksCommand) -> anyhow::Result<Outcome> {
    match command {
        WebhooksCommand::List(args) => list(args),
    }
}

fn list(args: &WebhooksListArgs) -> anyhow::Result<Outcome> {
    let api = crate::commands::danube_api(&args.api)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let webhooks = runtime.block_on(api.list_webhooks())?;
    if args.json {
        // serde_json escapes every control character, so this is safe to print.
        println!(
            "{}",
            serde_json::to_string_pretty(&webhooks).expect("webhooks serialize")
        );
    } else {
        print!("{}", table(&webhooks));
    }
    Ok(Outcome::Success)
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
