//! The parts of Go's `fmt` that templates reach through `print`, `printf` and `println`: `%v`
//! rendering of each value kind, verbs with flags, width and precision, and Go's error notation
//! for bad verbs, missing and extra arguments.

use super::exec::{format_float, DataView, Value};
use super::quote::go_quote;

/// `fmt.Sprint` of one value (`%v`).
pub fn sprint_value(value: &Value, data: &DataView) -> String {
    match value {
        Value::Str(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Uint8(u) => u.to_string(),
        Value::Float(f) => format_float(*f),
        Value::Complex(re, im) => format_complex(*re, *im),
        Value::Nil => "<nil>".to_owned(),
        Value::Data => format!(
            "{{{}}}",
            data.fields
                .iter()
                .map(|(_, v)| *v)
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Go's `%v` of a complex128: `(1+2i)`.
pub fn format_complex(re: f64, im: f64) -> String {
    let im_text = format_float(im);
    let sign = if im_text.starts_with(['-', '+']) {
        ""
    } else {
        "+"
    };
    format!("({}{sign}{im_text}i)", format_float(re))
}

/// `fmt.Sprint`: a space between operands when neither side is a string.
pub fn sprint(args: &[Value], data: &DataView) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 && !matches!(arg, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&sprint_value(arg, data));
    }
    out
}

/// One directive's flags, width and precision.
#[derive(Default)]
struct Spec {
    minus: bool,
    zero: bool,
    plus: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

impl Spec {
    fn pad(&self, text: String, numeric: bool) -> String {
        let Some(width) = self.width else {
            return text;
        };
        let len = text.chars().count();
        if len >= width {
            return text;
        }
        let fill = width - len;
        if self.minus {
            text + &" ".repeat(fill)
        } else if self.zero && numeric {
            let (sign, digits) = match text.strip_prefix('-') {
                Some(rest) => ("-", rest.to_owned()),
                None => ("", text),
            };
            format!("{sign}{}{digits}", "0".repeat(fill))
        } else {
            " ".repeat(fill) + &text
        }
    }
}

fn bad_verb(verb: char, value: &Value, data: &DataView) -> String {
    match value {
        Value::Nil => format!("%!{verb}(<nil>)"),
        other => format!(
            "%!{verb}({}={})",
            other.type_name(data),
            sprint_value(other, data)
        ),
    }
}

/// Formats one operand with one verb.
fn format_one(verb: char, spec: &Spec, value: &Value, data: &DataView) -> String {
    if let Value::Data = value {
        // Structs format field by field with the same verb.
        let fields: Vec<String> = data
            .fields
            .iter()
            .map(|(_, v)| format_one(verb, spec, &Value::Str((*v).to_owned()), data))
            .collect();
        return format!("{{{}}}", fields.join(" "));
    }
    let (text, numeric) = match (verb, value) {
        ('v', Value::Nil) => ("<nil>".to_owned(), false),
        ('v', other) => (
            sprint_value(other, data),
            !matches!(other, Value::Str(_) | Value::Bool(_)),
        ),
        ('s', Value::Str(s)) => (truncate(s, spec.precision), false),
        ('q', Value::Str(s)) => (go_quote(&truncate(s, spec.precision)), false),
        ('x', Value::Str(s)) => (s.bytes().map(|b| format!("{b:02x}")).collect(), false),
        ('X', Value::Str(s)) => (s.bytes().map(|b| format!("{b:02X}")).collect(), false),
        ('t', Value::Bool(b)) => (b.to_string(), false),
        ('d', Value::Int(i)) => (signed(*i, spec.plus), true),
        ('d', Value::Uint8(u)) => (signed(i64::from(*u), spec.plus), true),
        ('x', Value::Int(i)) => (hex(*i, false), true),
        ('X', Value::Int(i)) => (hex(*i, true), true),
        ('c', Value::Int(i)) => (
            u32::try_from(*i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}')
                .to_string(),
            false,
        ),
        ('f' | 'F', Value::Float(f)) => (format!("{f:.*}", spec.precision.unwrap_or(6)), true),
        ('g', Value::Float(f)) => (format_float(*f), true),
        ('e', Value::Float(f)) => (format_exponent(*f, spec.precision.unwrap_or(6)), true),
        _ => return bad_verb(verb, value, data),
    };
    spec.pad(text, numeric)
}

fn truncate(s: &str, precision: Option<usize>) -> String {
    match precision {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_owned(),
    }
}

fn signed(i: i64, plus: bool) -> String {
    if plus && i >= 0 {
        format!("+{i}")
    } else {
        i.to_string()
    }
}

fn hex(i: i64, upper: bool) -> String {
    let magnitude = i.unsigned_abs();
    let digits = if upper {
        format!("{magnitude:X}")
    } else {
        format!("{magnitude:x}")
    };
    if i < 0 {
        format!("-{digits}")
    } else {
        digits
    }
}

/// Go's `%e`: `1.500000e+00`.
fn format_exponent(f: f64, precision: usize) -> String {
    let text = format!("{f:.precision$e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    format!(
        "{mantissa}e{}{:02}",
        if exponent < 0 { '-' } else { '+' },
        exponent.abs()
    )
}

/// `fmt.Sprintf`.
pub fn sprintf(format: &str, args: &[Value], data: &DataView) -> String {
    let mut out = String::new();
    let mut next_arg = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => spec.minus = true,
                '0' => spec.zero = !spec.minus,
                '+' => spec.plus = true,
                '#' | ' ' => {}
                _ => break,
            }
            chars.next();
        }
        if chars.peek() == Some(&'*') {
            // The width comes from the next operand, which must be an int.
            chars.next();
            match args.get(next_arg) {
                Some(Value::Int(w)) => {
                    spec.width = usize::try_from(w.unsigned_abs()).ok();
                    spec.minus |= *w < 0;
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            next_arg += 1;
        } else {
            let mut width = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                width.push(d);
                chars.next();
            }
            spec.width = width.parse().ok();
        }
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut precision = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                precision.push(d);
                chars.next();
            }
            spec.precision = Some(precision.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next_arg) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next_arg += 1;
        out.push_str(&format_one(verb, &spec, arg, data));
    }
    if next_arg < args.len() {
        let extra: Vec<String> = args[next_arg..]
            .iter()
            .map(|a| match a {
                Value::Nil => "<nil>".to_owned(),
                other => format!("{}={}", other.type_name(data), sprint_value(other, data)),
            })
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}
