//! What the dashboard benches share: the dashboard's setup as a listener
//! on port 4000 with one secret and `store` would give it.

use std::path::PathBuf;

use chrono::FixedOffset;
use danube_hooks::tui::app::{AppConfig, HISTORY_BYTES, HISTORY_CAP, RegisteredWith};

pub fn config(store: PathBuf) -> AppConfig {
    AppConfig {
        listen_url: "http://127.0.0.1:4000".into(),
        fingerprints: vec!["whsec_…LaSw".into()],
        store_path: Some(store),
        shared_store: None,
        forward_url: None,
        danube_webhook: None,
        tunnel: None,
        registered_with: RegisteredWith::Nothing,
        log_path: PathBuf::from("/tmp/danube-hooks.log"),
        color: true,
        utc_offset: FixedOffset::east_opt(0).expect("UTC is an offset"),
        history_cap: HISTORY_CAP,
        history_bytes: HISTORY_BYTES,
        viewer: false,
    }
}
