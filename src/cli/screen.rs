//! Where `listen` and `dashboard` show deliveries, and how many of the
//! store's earlier ones they open with: the same four flags for both.

use clap::Args;

use crate::tui::app::HISTORY_CAP;

#[derive(Debug, Args)]
pub(crate) struct ScreenArgs {
    /// The dashboard opens with at most N of the store's latest deliveries, within its 64 MiB
    /// history [default: as many as fit, up to 10000]. Headless, `dashboard` prints them first;
    /// `listen` prints only what arrives.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=HISTORY_CAP as u64))]
    history: Option<u64>,
    /// The dashboard opens empty, without the store's earlier deliveries (as --history 0).
    #[arg(long, conflicts_with = "history")]
    fresh: bool,
    /// Headless: one human line per delivery on stdout, as each is stored.
    #[arg(long)]
    pub(crate) no_tui: bool,
    /// Headless: one JSON record per line on stdout, as each is stored, and nothing else.
    #[arg(long)]
    pub(crate) json: bool,
}

impl ScreenArgs {
    /// How many of the store's latest deliveries the dashboard opens with,
    /// at most: `--history`, 0 with `--fresh`, else the history's cap.
    pub(crate) fn history_rows(&self) -> usize {
        match (self.fresh, self.history) {
            (true, _) => 0,
            (false, n) => n.map_or(HISTORY_CAP, |n| usize::try_from(n).unwrap_or(HISTORY_CAP)),
        }
    }
}
