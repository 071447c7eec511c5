//! Durations in the Kubernetes/Go form (`300ms`, `1s`, `1h30m`, `-2s`), as `time.ParseDuration`
//! accepts them.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("time: invalid duration \"{0}\"")]
pub struct InvalidDuration(pub String);

/// Parses a Go duration and returns its length in nanoseconds (negative when it starts with `-`).
/// Overflow is reported as invalid, as Go does.
pub fn parse_duration(text: &str) -> Result<i128, InvalidDuration> {
    let invalid = || InvalidDuration(text.to_owned());
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        total += value * nanos_per_unit;
    }
    // Go rejects anything beyond int64 nanoseconds (about 292 years).
    if total > i64::MAX as f64 {
        return Err(invalid());
    }
    let nanos = total as i128;
    Ok(if negative { -nanos } else { nanos })
}

/// A length of time as the server's flags take it: a Go duration (`5s`, `500ms`, `1m30s`) or a
/// plain number of seconds (`5`, `0.5`). Negative lengths are refused.
pub fn parse_flag_duration(text: &str) -> Result<std::time::Duration, String> {
    let plain_seconds = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if plain_seconds {
        let seconds: f64 = text
            .parse()
            .map_err(|_| format!("invalid number of seconds \"{text}\""))?;
        return std::time::Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("{text} seconds is out of range"));
    }
    let nanos = parse_duration(text).map_err(|e| {
        format!("{e} (expected a duration such as 5s or 500ms, or a number of seconds)")
    })?;
    let nanos = u64::try_from(nanos).map_err(|_| format!("\"{text}\" is negative"))?;
    Ok(std::time::Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_durations_take_go_durations_or_seconds() {
        use std::time::Duration;
        let cases: &[(&str, Option<Duration>)] = &[
            ("5s", Some(Duration::from_secs(5))),
            ("500ms", Some(Duration::from_millis(500))),
            ("1m30s", Some(Duration::from_secs(90))),
            ("0", Some(Duration::ZERO)),
            ("20", Some(Duration::from_secs(20))),
            ("0.25", Some(Duration::from_millis(250))),
            ("-1s", None),
            ("", None),
            ("5 s", None),
            ("1.2.3", None),
            ("soon", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_flag_duration(text).ok(), *want, "{text:?}");
        }
    }

    #[test]
    fn table() {
        let cases: &[(&str, Option<i128>)] = &[
            ("0", Some(0)),
            ("1s", Some(1_000_000_000)),
            ("300ms", Some(300_000_000)),
            ("1h30m", Some(5_400_000_000_000)),
            ("1.5s", Some(1_500_000_000)),
            ("-2s", Some(-2_000_000_000)),
            ("+5us", Some(5_000)),
            ("24h", Some(86_400_000_000_000)),
            ("", None),
            ("1", None),
            ("s", None),
            ("1d", None),
            ("1..5s", None),
            ("-", None),
            ("99999999999h", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text).ok(), *want, "{text:?}");
        }
    }
}
