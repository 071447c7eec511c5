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

#[cfg(test)]
mod tests {
    use super::*;

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
