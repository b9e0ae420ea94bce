//! The parsers of argument values clap calls: durations, sizes, the
//! backoff list, verdicts, event types and API keys.

use std::time::Duration;

use crate::signature;

/// `--backoff`'s default, for `trigger` and `emulate` alike.
pub(crate) const DEFAULT_BACKOFF: &str = "1s,5s";

/// `--backoff 1s,5s`: the waits before attempt 2, 3, …
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backoff(pub Vec<Duration>);

pub(crate) fn parse_backoff(text: &str) -> Result<Backoff, String> {
    text.split(',')
        .map(parse_duration)
        .collect::<Result<Vec<_>, _>>()
        .map(Backoff)
}

/// An `--api-key`: one header value, no spaces.
pub(crate) fn parse_api_key(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("an API key cannot be empty".into());
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("an API key cannot hold spaces or control characters".into());
    }
    Ok(text.to_owned())
}

pub(crate) fn parse_verdict(text: &str) -> Result<signature::Verdict, String> {
    signature::Verdict::parse(text).ok_or_else(|| {
        let names: Vec<&str> = signature::Verdict::ALL.iter().map(|v| v.as_str()).collect();
        format!("{text:?} is not a verdict; use one of {}", names.join(", "))
    })
}

/// One of Danube's event types (SPEC §1).
pub(crate) fn parse_event(text: &str) -> Result<String, String> {
    if crate::events::EVENT_TYPES.contains(&text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not one of Danube's event types: {}",
            crate::events::EVENT_TYPES.join(", ")
        ))
    }
}

/// `10s`, `250ms`, `2m`, `1.5s`, or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(split) => text.split_at(split),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: use e.g. 10s, 250ms, 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?}; use ms, s or m")),
    };
    if !(0.0..=86_400.0).contains(&seconds) {
        return Err(format!("{text:?} is out of range: at most 24h"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// How far back `--since` may reach: `deliveries` reads the store no
/// further back than this.
pub(crate) const MAX_AGE_DAYS: i64 = 30;

/// An age before now: `90s`, `30m`, `2h`, `3d`, 1 s to [`MAX_AGE_DAYS`].
pub(crate) fn parse_age(text: &str) -> Result<chrono::TimeDelta, String> {
    let text = text.trim();
    let allowed = "use a whole number and a unit: 90s, 30m, 2h, 3d, 1w";
    let age =
        crate::query::ago(text).ok_or_else(|| format!("{text:?} is not an age: {allowed}"))?;
    if (1..=MAX_AGE_DAYS * 86_400).contains(&age.num_seconds()) {
        Ok(age)
    } else {
        Err(format!(
            "{text:?} is out of range: from 1s to {MAX_AGE_DAYS}d"
        ))
    }
}

/// `--store-max-age`: an age as `--since` reads it (`12h`, `7d`, `2w`),
/// from a minute (younger rows may still be arriving) to ten years.
pub(crate) fn parse_max_age(text: &str) -> Result<chrono::TimeDelta, String> {
    let text = text.trim();
    let age = crate::query::ago(text)
        .ok_or_else(|| format!("{text:?} is not an age: use e.g. 12h, 7d, 2w"))?;
    if (60..=3650 * 86_400).contains(&age.num_seconds()) {
        Ok(age)
    } else {
        Err(format!("{text:?} is out of range: from 1m to 3650d"))
    }
}

/// `1048576`, `512KiB`, `1MiB`, `64KB`.
pub(crate) fn parse_size(text: &str) -> Result<usize, String> {
    parse_size_up_to(text, crate::delivery::LARGEST_BODY, "1GiB")
        .map(|size| usize::try_from(size).unwrap_or(usize::MAX))
}

/// A store size: `100MiB`, `1GiB`, up to 1TiB.
pub(crate) fn parse_store_size(text: &str) -> Result<u64, String> {
    parse_size_up_to(text, 1024 * 1024 * 1024 * 1024, "1TiB")
}

fn parse_size_up_to(text: &str, max: u64, max_text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size: use e.g. 1048576, 512KiB, 1MiB"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?}; use B, KiB, MiB or GiB"
            ));
        }
    };
    number
        .checked_mul(factor)
        .filter(|&size| size > 0 && size <= max)
        .ok_or_else(|| format!("{text:?} is out of range: 1 byte to {max_text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_max_age_reads_as_since_does_from_a_minute_to_ten_years() {
        assert_eq!(parse_max_age("7d"), Ok(chrono::TimeDelta::days(7)));
        assert_eq!(parse_max_age("2w"), Ok(chrono::TimeDelta::weeks(2)));
        assert!(
            parse_max_age("30s")
                .unwrap_err()
                .contains("from 1m to 3650d")
        );
        assert!(parse_max_age("3651d").is_err());
        assert!(parse_max_age("7 days").unwrap_err().contains("not an age"));
    }

    #[test]
    fn an_age_is_a_whole_number_and_a_unit_up_to_30_days() {
        for (text, seconds) in [
            ("90s", 90),
            ("30m", 1800),
            ("2h", 7200),
            ("1w", 604_800),
            ("30d", 2_592_000),
        ] {
            assert_eq!(
                parse_age(text),
                Ok(chrono::TimeDelta::seconds(seconds)),
                "{text}"
            );
        }
        for (text, said) in [
            ("31d", "out of range"),
            ("0s", "out of range"),
            ("99999d", "out of range"),
            ("2", "not an age: use a whole number and a unit"),
            ("1.5h", "not an age"),
            ("h", "not an age"),
            ("99999999999999999999d", "not an age"),
        ] {
            let err = parse_age(text).unwrap_err();
            assert!(err.contains(said), "{text}: {err}");
        }
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_mins(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("5h").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_size("1MiB"), Ok(1024 * 1024));
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1TB").is_err());
        assert_eq!(parse_size("1GiB"), Ok(1024 * 1024 * 1024));
        assert!(parse_size("2GiB").is_err());
        assert_eq!(parse_store_size("10MiB"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_store_size("4GiB"), Ok(4 * 1024 * 1024 * 1024));
        assert!(parse_store_size("0").is_err());
        assert!(parse_store_size("2048GiB").is_err());
    }
}
