//! Durations in the Kubernetes/Go form (`300ms`, `1s`, `1h30m`, `-2s`), parsed exactly as Go's
//! `time.ParseDuration` parses them, with its error text: upstream Kuma decodes these fields
//! with it, so users see Go's own words (`time: unknown unit "d" in duration "1d"`).
//! `tests/it/duration_oracle.rs` compares both against Go itself.

use std::fmt;

/// Nanoseconds per unit, as Go's `unitMap` lists them (both spellings of micro included).
const UNITS: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Go counts in unsigned 64-bit and refuses magnitudes above 2^63 (2^63 itself only when
/// negative, as `math.MinInt64`).
const MAGNITUDE_LIMIT: u64 = 1 << 63;

/// Why Go's `time.ParseDuration` refused a text; displays as Go's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    problem: Problem,
    /// The whole text as given.
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    Invalid,
    MissingUnit,
    UnknownUnit(String),
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = time_quote(&self.text);
        match &self.problem {
            Problem::Invalid => write!(f, "time: invalid duration {text}"),
            Problem::MissingUnit => write!(f, "time: missing unit in duration {text}"),
            Problem::UnknownUnit(unit) => {
                write!(
                    f,
                    "time: unknown unit {} in duration {text}",
                    time_quote(unit)
                )
            }
        }
    }
}

impl std::error::Error for DurationError {}

/// Parses a Go duration and returns its length in nanoseconds (negative when it starts with `-`).
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    let fail = |problem| DurationError {
        problem,
        text: text.to_owned(),
    };
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(fail(Problem::Invalid));
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(fail(Problem::Invalid));
        }
        let (whole, after_whole) = leading_int(rest).ok_or_else(|| fail(Problem::Invalid))?;
        let had_whole = after_whole.len() != rest.len();
        rest = after_whole;
        let mut fraction = (0, 1.0);
        let mut had_fraction = false;
        if let Some(after_dot) = rest.strip_prefix('.') {
            let (digits, scale, after_fraction) = leading_fraction(after_dot);
            had_fraction = after_fraction.len() != after_dot.len();
            fraction = (digits, scale);
            rest = after_fraction;
        }
        if !had_whole && !had_fraction {
            return Err(fail(Problem::Invalid));
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(fail(Problem::MissingUnit));
        }
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some(&(_, nanos)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(fail(Problem::UnknownUnit(unit.to_owned())));
        };
        if whole > MAGNITUDE_LIMIT / nanos {
            return Err(fail(Problem::Invalid));
        }
        let mut value = whole * nanos;
        let (digits, scale) = fraction;
        if digits > 0 {
            // Go computes the fraction in float64, truncating; so must we, to the nanosecond.
            value += (digits as f64 * (nanos as f64 / scale)) as u64;
            if value > MAGNITUDE_LIMIT {
                return Err(fail(Problem::Invalid));
            }
        }
        // Go adds in uint64 and wraps: two components of exactly 2^63 sum to 0. Reproduced, not
        // fixed, so a value Go accepts is accepted here too (and without an overflow panic).
        total = total.wrapping_add(value);
        if total > MAGNITUDE_LIMIT {
            return Err(fail(Problem::Invalid));
        }
    }
    if negative {
        // 2^63 wraps to i64::MIN, which is its own negation, as in Go.
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| fail(Problem::Invalid))
}

/// Go's `leadingInt`: the leading digits as a number and the rest; `None` beyond 2^63.
fn leading_int(text: &str) -> Option<(u64, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let mut value: u64 = 0;
    for digit in text.bytes().take(digits) {
        if value > MAGNITUDE_LIMIT / 10 {
            return None;
        }
        value = value * 10 + u64::from(digit - b'0');
        if value > MAGNITUDE_LIMIT {
            return None;
        }
    }
    Some((value, &text[digits..]))
}

/// Go's `leadingFraction`: the digits after a dot as a number and its scale (10^kept digits),
/// and the rest. Digits beyond what fits are consumed and ignored.
fn leading_fraction(text: &str) -> (u64, f64, &str) {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (mut value, mut scale) = (0u64, 1.0f64);
    let mut overflowed = false;
    for digit in text.bytes().take(digits) {
        if overflowed {
            continue;
        }
        if value > (MAGNITUDE_LIMIT - 1) / 10 {
            overflowed = true;
            continue;
        }
        let next = value * 10 + u64::from(digit - b'0');
        if next > MAGNITUDE_LIMIT {
            overflowed = true;
            continue;
        }
        value = next;
        scale *= 10.0;
    }
    (value, scale, &text[digits..])
}

/// The `time` package's own quoting (not `strconv.Quote`): `"` and `\` are escaped, and every
/// byte of a control or non-ASCII character is written as `\xNN`.
fn time_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if (' '..='\u{7f}').contains(&c) {
            if c == '"' || c == '\\' {
                quoted.push('\\');
            }
            quoted.push(c);
        } else {
            let mut bytes = [0; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                quoted.push_str(&format!("\\x{byte:02x}"));
            }
        }
    }
    quoted.push('"');
    quoted
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
    fn values() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("-0", 0),
            ("1s", 1_000_000_000),
            ("300ms", 300_000_000),
            ("1h30m", 5_400_000_000_000),
            ("1.5s", 1_500_000_000),
            (".5s", 500_000_000),
            ("5.s", 5_000_000_000),
            ("-2s", -2_000_000_000),
            ("+5us", 5_000),
            ("3\u{b5}s", 3_000),
            ("3\u{3bc}s", 3_000),
            ("24h", 86_400_000_000_000),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("0.3333333333333333333h", 1_200_000_000_000),
            ("9223372036854775808ns9223372036854775808ns", 0),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(*want), "{text:?}");
        }
    }

    #[test]
    fn go_error_messages() {
        let cases = [
            ("", r#"time: invalid duration """#),
            ("-", r#"time: invalid duration "-""#),
            ("x", r#"time: invalid duration "x""#),
            (".s", r#"time: invalid duration ".s""#),
            ("10", r#"time: missing unit in duration "10""#),
            ("1s2", r#"time: missing unit in duration "1s2""#),
            ("1d", r#"time: unknown unit "d" in duration "1d""#),
            ("1..5s", r#"time: missing unit in duration "1..5s""#),
            (
                "9223372036854775808ns",
                r#"time: invalid duration "9223372036854775808ns""#,
            ),
            ("99999999999h", r#"time: invalid duration "99999999999h""#),
            (
                "1é",
                r#"time: unknown unit "\xc3\xa9" in duration "1\xc3\xa9""#,
            ),
            ("1\"", r#"time: unknown unit "\"" in duration "1\"""#),
            ("1\t", r#"time: unknown unit "\x09" in duration "1\x09""#),
        ];
        for (text, want) in cases {
            let got = parse_duration(text).map_err(|e| e.to_string());
            assert_eq!(got, Err(want.to_owned()), "{text:?}");
        }
    }
}
