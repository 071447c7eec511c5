//! The functions a template can call: Go's builtins (for the values this data model has) and
//! upstream Kuma's `label`.

use super::exec::{DataView, Value};

pub enum CallError {
    /// Wrong number or type of arguments: reported without "error calling".
    Args(String),
    /// The function itself failed.
    Failed(String),
}

type Result = std::result::Result<Value, CallError>;

fn want(name: &str, count: usize, args: &[Value]) -> std::result::Result<(), CallError> {
    if args.len() == count {
        Ok(())
    } else {
        Err(CallError::Args(format!(
            "wrong number of args for {name}: want {count} got {}",
            args.len()
        )))
    }
}

fn string_arg<'v>(value: &'v Value, data: &DataView) -> std::result::Result<&'v str, CallError> {
    match value {
        Value::Str(s) => Ok(s),
        other => Err(CallError::Args(format!(
            "wrong type for value; expected string; got {}",
            type_of(other, data)
        ))),
    }
}

fn type_of(value: &Value, data: &DataView) -> String {
    value.type_name(data)
}

fn sprint(value: &Value, data: &DataView) -> String {
    value.print(data)
}

/// `fmt.Sprint`: a space between operands when neither side is a string.
fn go_sprint(args: &[Value], data: &DataView) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::Str(_));
        if i > 0 && !is_string && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&sprint(arg, data));
    }
    out
}

/// `fmt.Sprintf` for the common verbs.
fn go_sprintf(format: &str, args: &[Value], data: &DataView) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let text = match (verb, arg) {
            ('v' | 's', _)
                if !matches!(
                    (verb, arg),
                    ('s', Value::Int(_) | Value::Float(_) | Value::Bool(_))
                ) =>
            {
                sprint(arg, data)
            }
            ('d', Value::Int(i)) => i.to_string(),
            ('t', Value::Bool(b)) => b.to_string(),
            ('q', Value::Str(s)) => super::quote::go_quote(s),
            ('x', Value::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('X', Value::Str(s)) => s.bytes().map(|b| format!("{b:02X}")).collect(),
            ('x', Value::Int(i)) => format!("{i:x}"),
            ('X', Value::Int(i)) => format!("{i:X}"),
            ('g' | 'f' | 'e', Value::Float(f)) if verb == 'g' => super::exec::format_float(*f),
            ('f', Value::Float(f)) => format!("{f:.6}"),
            _ => format!("%!{verb}({}={})", type_of(arg, data), sprint(arg, data)),
        };
        out.push_str(&text);
    }
    let extra: Vec<&Value> = args.collect();
    if !extra.is_empty() {
        let listed: Vec<String> = extra
            .iter()
            .map(|a| format!("{}={}", type_of(a, data), sprint(a, data)))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", listed.join(", ")));
    }
    out
}

fn compare_basic(
    name: &str,
    a: &Value,
    b: &Value,
    data: &DataView,
) -> std::result::Result<std::cmp::Ordering, CallError> {
    use std::cmp::Ordering;
    let order = match (a, b) {
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) if name == "eq" || name == "ne" => x.cmp(y),
        (Value::Bool(_), Value::Bool(_)) => {
            return Err(CallError::Failed("invalid type for comparison".to_owned()))
        }
        (Value::Nil, _) | (_, Value::Nil) => {
            return Err(CallError::Failed("invalid type for comparison".to_owned()))
        }
        _ => {
            let _ = data;
            return Err(CallError::Failed(
                "incompatible types for comparison".to_owned(),
            ));
        }
    };
    Ok(order)
}

/// Go's `template.HTMLEscapeString`.
fn html_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
fn js_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < ' ' as u32 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub fn call(name: &str, args: &[Value], data: &DataView) -> Result {
    match name {
        "label" => {
            want(name, 1, args)?;
            let key = string_arg(&args[0], data)?;
            data.labels
                .get(key)
                .map(|v| Value::Str(v.clone()))
                .ok_or_else(|| CallError::Failed(format!("label {key} not found")))
        }
        "not" => {
            want(name, 1, args)?;
            Ok(Value::Bool(!truth(&args[0])))
        }
        "len" => {
            want(name, 1, args)?;
            match &args[0] {
                Value::Str(s) => Ok(Value::Int(s.len() as i64)),
                other => Err(CallError::Failed(format!(
                    "len of type {}",
                    type_of(other, data)
                ))),
            }
        }
        "print" => Ok(Value::Str(go_sprint(args, data))),
        "println" => Ok(Value::Str(
            args.iter()
                .map(|a| sprint(a, data))
                .collect::<Vec<_>>()
                .join(" ")
                + "\n",
        )),
        "printf" => {
            if args.is_empty() {
                return Err(CallError::Args(
                    "wrong number of args for printf: want at least 1 got 0".to_owned(),
                ));
            }
            let format = string_arg(&args[0], data)?;
            Ok(Value::Str(go_sprintf(format, &args[1..], data)))
        }
        "html" => Ok(Value::Str(html_escape(&go_sprint(args, data)))),
        "js" => Ok(Value::Str(js_escape(&go_sprint(args, data)))),
        "urlquery" => Ok(Value::Str(query_escape(&go_sprint(args, data)))),
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
            if name == "eq" {
                if args.is_empty() {
                    return Err(CallError::Args(
                        "wrong number of args for eq: want at least 1 got 0".to_owned(),
                    ));
                }
                if args.len() == 1 {
                    return Err(CallError::Failed(
                        "missing argument for comparison".to_owned(),
                    ));
                }
                for other in &args[1..] {
                    if compare_basic(name, &args[0], other, data)? == std::cmp::Ordering::Equal {
                        return Ok(Value::Bool(true));
                    }
                }
                return Ok(Value::Bool(false));
            }
            want(name, 2, args)?;
            let order = compare_basic(name, &args[0], &args[1], data)?;
            use std::cmp::Ordering::*;
            Ok(Value::Bool(match name {
                "ne" => order != Equal,
                "lt" => order == Less,
                "le" => order != Greater,
                "gt" => order == Greater,
                _ => order != Less,
            }))
        }
        "index" => {
            if args.is_empty() {
                return Err(CallError::Args(
                    "wrong number of args for index: want at least 1 got 0".to_owned(),
                ));
            }
            let mut value = args[0].clone();
            for index in &args[1..] {
                value = match (&value, index) {
                    (Value::Str(s), Value::Int(i)) => {
                        match usize::try_from(*i).ok().and_then(|i| s.as_bytes().get(i)) {
                            Some(b) => Value::Int(i64::from(*b)),
                            None => {
                                return Err(CallError::Failed(format!(
                                    "error calling index: index out of range: {i}"
                                )))
                            }
                        }
                    }
                    (Value::Nil, _) => {
                        return Err(CallError::Failed("index of untyped nil".to_owned()))
                    }
                    (other, _) => {
                        return Err(CallError::Failed(format!(
                            "can't index item of type {}",
                            type_of(other, data)
                        )))
                    }
                };
            }
            Ok(value)
        }
        "slice" => {
            let Some(first) = args.first() else {
                return Err(CallError::Args(
                    "wrong number of args for slice: want at least 1 got 0".to_owned(),
                ));
            };
            let Value::Str(s) = first else {
                return Err(CallError::Failed(format!(
                    "can't slice item of type {}",
                    type_of(first, data)
                )));
            };
            let mut bounds = Vec::new();
            for arg in &args[1..] {
                match arg {
                    Value::Int(i) => bounds.push(*i),
                    other => {
                        return Err(CallError::Failed(format!(
                            "cannot index slice/array with type {}",
                            type_of(other, data)
                        )))
                    }
                }
            }
            if bounds.len() > 2 {
                return Err(CallError::Failed(
                    "cannot 3-index slice a string".to_owned(),
                ));
            }
            let len = s.len() as i64;
            let start = bounds.first().copied().unwrap_or(0);
            let end = bounds.get(1).copied().unwrap_or(len);
            if start < 0 || end < start || end > len {
                return Err(CallError::Failed(format!(
                    "index out of range: {}",
                    if end > len { end } else { start }
                )));
            }
            Ok(Value::Str(
                String::from_utf8_lossy(&s.as_bytes()[start as usize..end as usize]).into_owned(),
            ))
        }
        "call" => match args.first() {
            None => Err(CallError::Args(
                "wrong number of args for call: want at least 1 got 0".to_owned(),
            )),
            Some(Value::Nil) => Err(CallError::Failed("call of nil".to_owned())),
            Some(other) => Err(CallError::Failed(format!(
                "non-function of type {}",
                type_of(other, data)
            ))),
        },
        other => Err(CallError::Args(format!(
            "{} is not a defined function",
            super::quote::go_quote(other)
        ))),
    }
}

fn truth(value: &Value) -> bool {
    value.truth()
}
