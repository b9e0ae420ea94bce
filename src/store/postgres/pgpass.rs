//! The password file, as libpq reads it: `$PGPASSFILE`, else `~/.pgpass`;
//! lines of `hostname:port:database:username:password`, each of the first
//! four a value or `*` for any, `\:` and `\\` for a colon or backslash
//! inside one; `#` starts a comment line; the first line that matches wins.
//! A file that group or others may read is ignored, with libpq's warning:
//! a password others can read is no secret.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// A password file is a few lines; the bound keeps a wrong path (a device,
/// a log) from being read whole.
const MAX_FILE: u64 = 1024 * 1024;

/// What a line must match: the connection's first host, its port, the
/// database and the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) database: String,
    pub(crate) user: String,
}

/// The password file libpq would read: `$PGPASSFILE`, else `~/.pgpass`.
pub(crate) fn path() -> Option<PathBuf> {
    match std::env::var_os("PGPASSFILE").filter(|v| !v.is_empty()) {
        Some(path) => Some(PathBuf::from(path)),
        None => std::env::home_dir().map(|home| home.join(".pgpass")),
    }
}

/// The password for `wanted` from the file at `path`: none when there is
/// no such file, it cannot be read, no line matches, or group or others
/// may read it (then with a warning on stderr, as libpq gives).
pub(crate) fn lookup(path: &Path, wanted: &Wanted) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let shown = crate::display::escape_line(&path.display().to_string()).into_owned();
    if !meta.is_file() {
        eprintln!("danube-hooks: warning: password file {shown} is not a plain file");
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        eprintln!(
            "danube-hooks: warning: password file {shown} has group or world access, so it is \
             ignored; permissions should be u=rw (0600) or less (chmod 600 {shown})"
        );
        return None;
    }
    if meta.len() > MAX_FILE {
        eprintln!(
            "danube-hooks: warning: password file {shown} is {} bytes long: only its first {} \
             KiB are read",
            meta.len(),
            MAX_FILE / 1024
        );
    }
    // Bytes, not text: a line that is not UTF-8 matches nothing, and the
    // others are still read. Opened without waiting: a file swapped for a
    // FIFO since it was looked at reads as empty.
    let bytes = crate::fsutil::read_within(path, MAX_FILE).ok()?;
    find(&String::from_utf8_lossy(&bytes), wanted)
}

/// The password of the first line of `text` that matches `wanted`.
pub(crate) fn find(text: &str, wanted: &Wanted) -> Option<String> {
    let port = wanted.port.to_string();
    let want = [
        wanted.host.as_str(),
        port.as_str(),
        &wanted.database,
        &wanted.user,
    ];
    text.lines()
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.starts_with('#'))
        .filter_map(fields)
        .find(|fields| {
            fields[..4]
                .iter()
                .zip(want)
                .all(|(field, want)| field.matches(want))
        })
        .map(|mut fields| std::mem::take(&mut fields[4].text))
}

/// One field of a line: its text with escapes taken out, and whether it
/// was a bare `*`.
#[derive(Debug, Default)]
struct Field {
    text: String,
    any: bool,
}

impl Field {
    fn matches(&self, value: &str) -> bool {
        self.any || self.text == value
    }
}

/// A line's five fields; `None` for a line with fewer. The password ends
/// at the next unescaped `:` too, as libpq reads it.
fn fields(line: &str) -> Option<[Field; 5]> {
    let mut fields: [Field; 5] = Default::default();
    let mut chars = line.chars();
    for (index, field) in fields.iter_mut().enumerate() {
        let mut escaped_any = false;
        let mut ended = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(next) => {
                        field.text.push(next);
                        escaped_any = true;
                    }
                    None => field.text.push('\\'),
                },
                ':' => {
                    ended = true;
                    break;
                }
                c => field.text.push(c),
            }
        }
        field.any = field.text == "*" && !escaped_any;
        // The first four must each end with a colon.
        if index < 4 && !ended {
            return None;
        }
        if index == 4 {
            break;
        }
    }
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted() -> Wanted {
        Wanted {
            host: "db.example".into(),
            port: 5432,
            database: "hooks".into(),
            user: "ann".into(),
        }
    }

    #[test]
    fn the_first_matching_line_wins_and_stars_match_anything() {
        let text = "\
# a comment:*:*:*:not-this
other.example:5432:hooks:ann:wrong-host
db.example:5433:hooks:ann:wrong-port
db.example:*:hooks:ann:first
*:*:*:*:second
";
        assert_eq!(find(text, &wanted()).as_deref(), Some("first"));
        let anyone = Wanted {
            user: "bob".into(),
            ..wanted()
        };
        assert_eq!(find(text, &anyone).as_deref(), Some("second"));
        assert_eq!(find("db.example:5432:hooks:ann\n", &wanted()), None);
        assert_eq!(find("", &wanted()), None);
    }

    #[test]
    fn escapes_hold_colons_and_backslashes_and_an_escaped_star_is_a_star() {
        let text = "db.example:5432:hooks:ann:pa\\:ss\\\\word:ignored\r\n";
        assert_eq!(find(text, &wanted()).as_deref(), Some("pa:ss\\word"));
        let odd = Wanted {
            database: "we:ird".into(),
            ..wanted()
        };
        assert_eq!(
            find("db.example:5432:we\\:ird:ann:colon\n", &odd).as_deref(),
            Some("colon")
        );
        // `\*` is the database named `*`, not any database.
        assert_eq!(find("db.example:5432:\\*:ann:star\n", &wanted()), None);
        let star = Wanted {
            database: "*".into(),
            ..wanted()
        };
        assert_eq!(
            find("db.example:5432:\\*:ann:star\n", &star).as_deref(),
            Some("star")
        );
    }

    #[test]
    fn a_file_others_may_read_is_ignored() {
        let dir = std::env::temp_dir().join(format!("danube-hooks-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pgpass");
        std::fs::write(&path, "*:*:*:*:secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(lookup(&path, &wanted()), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(lookup(&path, &wanted()).as_deref(), Some("secret"));
        assert_eq!(lookup(&dir.join("none"), &wanted()), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
