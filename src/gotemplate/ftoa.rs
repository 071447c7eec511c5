//! Go's `strconv.AppendFloat(dst, v, fmt, prec, 64)` for the formats `fmt` asks for (`b`, `e`,
//! `E`, `f`, `g`, `G`, `x`, `X`), written into a [`Sink`] so no precision can allocate past the
//! rendering budget.
//!
//! The decimal digits come from Rust's own float formatting, which like Go's rounds the exact
//! binary value half to even; the layout around them (`fmtEFG`, `fmtB`, `fmtX`) follows Go's.
//! Rust is never asked for more digits than a float64 can have: its exact decimal expansion ends
//! within [`MAX_FIXED_PLACES`] places after the point and has fewer than [`MAX_SIGNIFICANT`]
//! significant digits, so every digit past those is a zero Go's layout code pads with anyway.

use super::sink::{OverBudget, Sink};

/// Places after the point asked of Rust at most (the smallest subnormal needs 1 074).
const MAX_FIXED_PLACES: usize = 1100;
/// Significant digits asked of Rust at most (a float64 has at most 767).
const MAX_SIGNIFICANT: usize = 800;

/// A non-negative decimal `0.d₁d₂d₃… × 10^dp` with trailing zeros trimmed: Go's digit slice, its
/// `dp` and `nd`. Zero has no digits.
#[derive(Debug, Default)]
struct Digits {
    digits: Vec<u8>,
    dp: i64,
}

impl Digits {
    fn nd(&self) -> i64 {
        self.digits.len() as i64
    }

    /// From Rust's `{:e}` rendering (`1.2345e-6`) of a non-zero value.
    fn from_scientific(text: &str) -> Self {
        let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
        let exponent: i64 = exponent.parse().unwrap_or(0);
        let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
        Self::trimmed(digits, exponent + 1)
    }

    /// From Rust's fixed rendering (`123.4500`, `0.0012`).
    fn from_fixed(text: &str) -> Self {
        let (integer, fraction) = text.split_once('.').unwrap_or((text, ""));
        let all: Vec<u8> = integer.bytes().chain(fraction.bytes()).collect();
        let leading = all.iter().take_while(|d| **d == b'0').count();
        let dp = integer.len() as i64 - leading as i64;
        Self::trimmed(all[leading..].to_vec(), dp)
    }

    fn trimmed(mut digits: Vec<u8>, dp: i64) -> Self {
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
        if digits.is_empty() {
            return Self::default();
        }
        Self { digits, dp }
    }

    fn at(&self, i: i64) -> u8 {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.digits.get(i))
            .copied()
            .unwrap_or(b'0')
    }
}

/// `strconv.AppendFloat(nil, v, fmt, prec, 64)` where `None` is precision -1 (shortest), in at
/// most `limit` bytes.
pub fn format_float(
    v: f64,
    fmt: u8,
    prec: Option<usize>,
    limit: usize,
) -> Result<String, OverBudget> {
    let mut out = Sink::new(limit);
    if v.is_nan() {
        out.push_str("NaN")?;
        return Ok(out.into_string());
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" })?;
        return Ok(out.into_string());
    }
    let bits = v.to_bits();
    let neg = bits >> 63 != 0;
    let mut exp = ((bits >> 52) & 0x7ff) as i64;
    let mut mant = bits & ((1 << 52) - 1);
    if exp == 0 {
        exp += 1;
    } else {
        mant |= 1 << 52;
    }
    exp -= 1023;
    // Precision in Go's terms: -1 for "shortest". For `%e`, `%f` and `%x` each unit of
    // precision is a byte of output, so a precision beyond the budget is refused here, before
    // anything is formatted (`%g`'s only caps the digits, `%b` has none).
    let go_prec = match prec {
        None => -1,
        Some(p) => {
            if matches!(fmt, b'e' | b'E' | b'f' | b'x' | b'X') {
                out.ensure(p)?;
            }
            p as i64
        }
    };
    match fmt {
        b'b' => fmt_b(&mut out, neg, mant, exp - 52)?,
        b'x' | b'X' => fmt_x(&mut out, go_prec, fmt, neg, mant, exp)?,
        _ if mant == 0 => fmt_efg(&mut out, neg, &Digits::default(), go_prec, fmt, go_prec < 0)?,
        _ => {
            let magnitude = v.abs();
            let (digits, go_prec) = match prec {
                None => {
                    let digits = Digits::from_scientific(&format!("{magnitude:e}"));
                    let (nd, dp) = (digits.nd(), digits.dp);
                    let prec = match fmt {
                        b'e' | b'E' => (nd - 1).max(0),
                        b'f' => (nd - dp).max(0),
                        _ => nd,
                    };
                    (digits, prec)
                }
                Some(p) => match fmt {
                    b'f' => {
                        let places = p.min(MAX_FIXED_PLACES);
                        (
                            Digits::from_fixed(&format!("{magnitude:.places$}")),
                            p as i64,
                        )
                    }
                    b'e' | b'E' => (significant(magnitude, p + 1), p as i64),
                    _ => {
                        let p = p.max(1);
                        (significant(magnitude, p), p as i64)
                    }
                },
            };
            fmt_efg(&mut out, neg, &digits, go_prec, fmt, prec.is_none())?;
        }
    }
    Ok(out.into_string())
}

/// The value rounded to `n` significant digits.
fn significant(magnitude: f64, n: usize) -> Digits {
    let places = n.clamp(1, MAX_SIGNIFICANT) - 1;
    Digits::from_scientific(&format!("{magnitude:.places$e}"))
}

/// Go's `fmtEFG`: `%e`, `%f` and `%g` layouts of decimal digits.
fn fmt_efg(
    out: &mut Sink,
    neg: bool,
    d: &Digits,
    mut prec: i64,
    mut fmt: u8,
    shortest: bool,
) -> Result<(), OverBudget> {
    let (nd, dp) = (d.nd(), d.dp);
    if fmt == b'g' || fmt == b'G' {
        let mut eprec = prec;
        if eprec > nd && nd >= dp {
            eprec = nd;
        }
        if shortest {
            eprec = 6;
        }
        let exp = dp - 1;
        if exp < -4 || exp >= eprec {
            if prec > nd {
                prec = nd;
            }
            prec -= 1;
            fmt = fmt + b'e' - b'g';
        } else {
            if prec > dp {
                prec = nd;
            }
            prec = (prec - dp).max(0);
            fmt = b'f';
        }
    }
    if neg {
        out.push('-')?;
    }
    match fmt {
        b'e' | b'E' => {
            out.push(char::from(if nd != 0 { d.at(0) } else { b'0' }))?;
            if prec > 0 {
                out.push('.')?;
                let shown = nd.min(prec + 1);
                for i in 1..shown {
                    out.push(char::from(d.at(i)))?;
                }
                out.repeat(b'0', count(prec + 1 - shown.max(1)))?;
            }
            out.push(char::from(fmt))?;
            let exp = if nd == 0 { 0 } else { dp - 1 };
            out.push(if exp < 0 { '-' } else { '+' })?;
            let exp = exp.abs();
            if exp < 10 {
                out.push('0')?;
            }
            out.push_str(&exp.to_string())?;
        }
        b'f' => {
            if dp > 0 {
                let shown = nd.min(dp);
                for i in 0..shown {
                    out.push(char::from(d.at(i)))?;
                }
                out.repeat(b'0', count(dp - shown))?;
            } else {
                out.push('0')?;
            }
            if prec > 0 {
                out.push('.')?;
                let leading = prec.min((-dp).max(0));
                let offset = dp + leading;
                let middle = (prec - leading).min((nd - offset).max(0));
                let trailing = (prec - leading - middle).max(0);
                out.repeat(b'0', count(leading))?;
                for i in 0..middle {
                    out.push(char::from(d.at(offset + i)))?;
                }
                out.repeat(b'0', count(trailing))?;
            }
        }
        other => {
            out.push('%')?;
            out.push(char::from(other))?;
        }
    }
    Ok(())
}

fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// Go's `%b`: `-ddddp±ddd`.
fn fmt_b(out: &mut Sink, neg: bool, mant: u64, exp: i64) -> Result<(), OverBudget> {
    if neg {
        out.push('-')?;
    }
    out.push_str(&mant.to_string())?;
    out.push('p')?;
    if exp >= 0 {
        out.push('+')?;
    }
    out.push_str(&exp.to_string())
}

/// Go's `%x`: `-0x1.yyyyp±dd`.
fn fmt_x(
    out: &mut Sink,
    prec: i64,
    fmt: u8,
    neg: bool,
    mut mant: u64,
    mut exp: i64,
) -> Result<(), OverBudget> {
    const MANT_BITS: u32 = 52;
    if mant == 0 {
        exp = 0;
    }
    // The leading 1 (if any) goes to bit 60.
    mant <<= 60 - MANT_BITS;
    while mant != 0 && mant & (1 << 60) == 0 {
        mant <<= 1;
        exp -= 1;
    }
    if (0..15).contains(&prec) {
        let shift = (prec * 4) as u32;
        let extra = (mant << shift) & ((1 << 60) - 1);
        mant >>= 60 - shift;
        if extra | (mant & 1) > 1 << 59 {
            mant += 1;
        }
        mant <<= 60 - shift;
        if mant & (1 << 61) != 0 {
            mant >>= 1;
            exp += 1;
        }
    }
    let hex: &[u8; 16] = if fmt == b'X' {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    if neg {
        out.push('-')?;
    }
    out.push('0')?;
    out.push(char::from(fmt))?;
    out.push(char::from(b'0' + ((mant >> 60) & 1) as u8))?;
    mant <<= 4;
    let digit = |mant: &mut u64| {
        let c = char::from(hex[((*mant >> 60) & 15) as usize]);
        *mant <<= 4;
        c
    };
    if prec < 0 && mant != 0 {
        out.push('.')?;
        while mant != 0 {
            out.push(digit(&mut mant))?;
        }
    } else if prec > 0 {
        out.push('.')?;
        out.ensure(count(prec))?;
        // Past the 13 hexadecimal digits of a float64's fraction, every digit is a zero.
        let real = prec.min(16);
        for _ in 0..real {
            out.push(digit(&mut mant))?;
        }
        out.repeat(b'0', count(prec - real))?;
    }
    out.push(if fmt == b'X' { 'P' } else { 'p' })?;
    out.push(if exp < 0 { '-' } else { '+' })?;
    let exp = exp.abs();
    if exp < 10 {
        out.push('0')?;
    }
    out.push_str(&exp.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64, fmt: u8, prec: Option<usize>) -> String {
        format_float(v, fmt, prec, 1 << 20).unwrap()
    }

    /// Expectations taken from Go's `strconv.FormatFloat`.
    #[test]
    fn layouts_match_go() {
        let cases: &[(f64, u8, Option<usize>, &str)] = &[
            (1e6, b'g', None, "1e+06"),
            (123456.0, b'g', None, "123456"),
            (1.5, b'g', Some(5), "1.5"),
            (100.0, b'g', Some(3), "100"),
            (0.0, b'g', Some(3), "0"),
            (0.0, b'e', None, "0e+00"),
            (-0.0, b'f', Some(2), "-0.00"),
            (0.125, b'f', Some(2), "0.12"),
            (2.5, b'e', Some(0), "2e+00"),
            (1e-7, b'g', None, "1e-07"),
            (1e100, b'e', Some(2), "1.00e+100"),
            (5e-324, b'e', Some(3), "4.941e-324"),
            (1.0, b'b', None, "4503599627370496p-52"),
            (1.0, b'x', None, "0x1p+00"),
            (1.5, b'X', Some(3), "0X1.800P+00"),
            (0.0, b'x', None, "0x0p+00"),
            (f64::NAN, b'g', None, "NaN"),
            (f64::NEG_INFINITY, b'f', Some(1), "-Inf"),
        ];
        for &(v, fmt, prec, want) in cases {
            assert_eq!(f(v, fmt, prec), want, "{v} {} {prec:?}", char::from(fmt));
        }
    }

    #[test]
    fn long_precisions_are_exact_and_padded_not_handed_to_rust() {
        let text = f(0.1, b'f', Some(70_000));
        assert_eq!(text.len(), 70_002);
        assert!(text.starts_with("0.1000000000000000055511151231257827"));
        assert!(text.ends_with("0000"));
        let text = f(1.0, b'e', Some(100_000));
        assert_eq!(text.len(), 100_006);
        assert_eq!(f(1.0, b'x', Some(20)), "0x1.00000000000000000000p+00");
    }

    #[test]
    fn precisions_beyond_the_budget_are_refused_before_formatting() {
        assert_eq!(
            format_float(1.0, b'f', Some(100_000_000), 4096),
            Err(OverBudget)
        );
        assert_eq!(format_float(1.0, b'x', Some(5000), 4096), Err(OverBudget));
        assert_eq!(format_float(1e300, b'f', Some(0), 100), Err(OverBudget));
    }
}
