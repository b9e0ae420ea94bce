//! Where this tool keeps its files unless told otherwise: the XDG base
//! directories, read one way for every file (the store, the emulator's
//! state, the credentials and saved webhooks).

use std::ffi::OsString;
use std::path::PathBuf;

/// The folder this tool's name is given inside each base directory.
const APP_DIR: &str = "danube-hooks";

/// `$XDG_CONFIG_HOME/danube-hooks` (when absolute), else
/// `~/.config/danube-hooks`: the credentials and saved webhooks.
pub(crate) fn config_dir() -> Option<PathBuf> {
    app_dir_from(
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::home_dir(),
        ".config",
    )
}

/// `$XDG_DATA_HOME/danube-hooks` (when absolute), else
/// `~/.local/share/danube-hooks`: the delivery store and the emulator's state.
pub(crate) fn data_dir() -> Option<PathBuf> {
    app_dir_from(
        std::env::var_os("XDG_DATA_HOME"),
        std::env::home_dir(),
        ".local/share",
    )
}

/// The XDG rule: an empty or relative base directory is ignored, and the
/// home folder's `home_default` stands in for it.
fn app_dir_from(
    xdg: Option<OsString>,
    home: Option<PathBuf>,
    home_default: &str,
) -> Option<PathBuf> {
    xdg.map(PathBuf::from)
        .filter(|path| path.is_absolute())
        .or_else(|| {
            home.filter(|path| path.is_absolute())
                .map(|home| home.join(home_default))
        })
        .map(|base| base.join(APP_DIR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_directory_follows_xdg_then_home() {
        let home = Some(PathBuf::from("/home/u"));
        let cases: [(Option<&str>, Option<PathBuf>, &str); 5] = [
            (Some("/data"), home.clone(), "/data/danube-hooks"),
            (
                Some("relative"),
                home.clone(),
                "/home/u/.local/share/danube-hooks",
            ),
            (Some(""), home.clone(), "/home/u/.local/share/danube-hooks"),
            (None, home.clone(), "/home/u/.local/share/danube-hooks"),
            (None, Some(PathBuf::from("relative-home")), ""),
        ];
        for (xdg, home, want) in cases {
            let got = app_dir_from(xdg.map(OsString::from), home, ".local/share");
            let want = (!want.is_empty()).then(|| PathBuf::from(want));
            assert_eq!(got, want, "XDG {xdg:?}");
        }
        assert_eq!(app_dir_from(None, None, ".config"), None);
    }
}
