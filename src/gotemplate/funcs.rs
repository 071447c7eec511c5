//! The functions a template can call: Go's builtins (for the values this data model has) and
//! upstream Kuma's `label`.

use super::limits::over_budget_message;
use super::quote::is_print;
use super::sink::{OverBudget, Sink};
use super::value::{DataView, Value};

/// A parameter's Go type, as far as argument checking is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    String,
    Any,
}

/// A function's parameters: fixed ones, then optionally any number of `any`.
pub struct Signature {
    pub fixed: &'static [Param],
    pub variadic: bool,
}

/// The signature of a function the template may call, as Go declares it.
pub fn signature(name: &str) -> Option<Signature> {
    use Param::{Any, String};
    let (fixed, variadic): (&'static [Param], bool) = match name {
        "label" => (&[String], false),
        "not" | "len" => (&[Any], false),
        "ne" | "lt" | "le" | "gt" | "ge" => (&[Any, Any], false),
        "and" | "or" | "eq" | "index" | "slice" | "call" => (&[Any], true),
        "printf" => (&[String], true),
        "print" | "println" | "html" | "js" | "urlquery" => (&[], true),
        _ => return None,
    };
    Some(Signature { fixed, variadic })
}

/// The error a function returns (printed after "error calling NAME: ").
type Result = std::result::Result<Value, String>;

fn string_arg(value: &Value) -> &str {
    match value {
        Value::Str(s) => s,
        _ => "",
    }
}

fn type_of(value: &Value, data: &DataView) -> String {
    value.type_name(data)
}

/// Turns a budget refusal into the message a call fails with.
fn within(result: std::result::Result<String, OverBudget>) -> Result {
    result
        .map(|text| Value::str(&text))
        .map_err(|OverBudget| over_budget_message())
}

/// Go's `basicKind` classes.
#[derive(PartialEq)]
enum Kind {
    Bool,
    Int,
    Uint,
    Float,
    Complex,
    String,
    Invalid,
}

fn kind(value: &Value) -> Kind {
    match value {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Uint8(_) => Kind::Uint,
        Value::Float(_) => Kind::Float,
        Value::Complex(..) => Kind::Complex,
        Value::Str(_) => Kind::String,
        Value::Nil | Value::Data => Kind::Invalid,
    }
}

/// Go's `eq` for two values.
fn equal(a: &Value, b: &Value, data: &DataView) -> std::result::Result<bool, String> {
    // Integers compare by value whatever their sign.
    if let Some((x, y)) = integers(a, b) {
        return Ok(x == y);
    }
    if kind(a) != kind(b) {
        if *a != Value::Nil && *b != Value::Nil {
            return Err(format!(
                "incompatible types for comparison: {} and {}",
                type_of(a, data),
                type_of(b, data)
            ));
        }
        return Ok(false);
    }
    Ok(match (a, b) {
        (Value::Data, Value::Data) => true,
        (Value::Nil, Value::Nil) => true,
        _ => a == b,
    })
}

/// Go's `lt` for two values.
fn less(a: &Value, b: &Value, data: &DataView) -> std::result::Result<bool, String> {
    const BAD: &str = "invalid type for comparison";
    if kind(a) == Kind::Invalid || kind(b) == Kind::Invalid {
        return Err(BAD.to_owned());
    }
    if let Some((x, y)) = integers(a, b) {
        return Ok(x < y);
    }
    if kind(a) != kind(b) {
        return Err(format!(
            "incompatible types for comparison: {} and {}",
            type_of(a, data),
            type_of(b, data)
        ));
    }
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x < y),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::Str(x), Value::Str(y)) => Ok(x < y),
        _ => Err(BAD.to_owned()),
    }
}

/// Both values as integers, when both are integers (signed or not).
fn integers(a: &Value, b: &Value) -> Option<(i64, i64)> {
    let as_int = |v: &Value| match v {
        Value::Int(i) => Some(*i),
        Value::Uint8(u) => Some(i64::from(*u)),
        _ => None,
    };
    Some((as_int(a)?, as_int(b)?))
}

/// Go's `indexArg`: an integer index within `0..=len`.
fn index_arg(index: &Value, len: usize, data: &DataView) -> std::result::Result<usize, String> {
    let x = match index {
        Value::Int(i) => *i,
        Value::Uint8(u) => i64::from(*u),
        Value::Nil => return Err("cannot index slice/array with nil".to_owned()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                type_of(other, data)
            ))
        }
    };
    match usize::try_from(x) {
        Ok(i) if i <= len => Ok(i),
        _ => Err(format!("index out of range: {x}")),
    }
}

/// Go's `evalArgs` for the escapers: a lone string as is, anything else through `fmt.Sprint`,
/// a missing value printed as `<no value>`.
fn escaper_input(
    args: &[Value],
    data: &DataView,
    room: usize,
) -> std::result::Result<String, OverBudget> {
    if let [Value::Str(s)] = args {
        return Ok(s.to_string());
    }
    let printable: Vec<Value> = args
        .iter()
        .map(|arg| match arg {
            Value::Nil => Value::str("<no value>"),
            other => other.clone(),
        })
        .collect();
    super::fmt::sprint(&printable, data, room)
}

/// Escapes `input` character by character into at most `room` bytes.
fn escape(input: &str, room: usize, escape: fn(char, &mut Sink) -> EscapeResult) -> Result {
    let mut out = Sink::new(room);
    let written = input.chars().try_for_each(|c| escape(c, &mut out));
    within(written.map(|()| out.into_string()))
}

type EscapeResult = std::result::Result<(), OverBudget>;

/// Go's `template.HTMLEscapeString`, one character.
fn html_escape(c: char, out: &mut Sink) -> EscapeResult {
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

/// Go's `template.JSEscapeString`, one character: quotes, backslashes, `<>&=` and control
/// characters escaped, non-printable characters as `\uXXXX`.
fn js_escape(c: char, out: &mut Sink) -> EscapeResult {
    match c {
        '\\' => out.push_str("\\\\"),
        '\'' => out.push_str("\\'"),
        '"' => out.push_str("\\\""),
        '<' => out.push_str("\\u003C"),
        '>' => out.push_str("\\u003E"),
        '&' => out.push_str("\\u0026"),
        '=' => out.push_str("\\u003D"),
        c if c < ' ' || !c.is_ascii() && !is_print(c) => {
            out.push_str(&format!("\\u{:04X}", u32::from(c)))
        }
        c => out.push(c),
    }
}

/// Go's `url.QueryEscape` into at most `room` bytes.
fn query_escape(s: &str, room: usize) -> Result {
    let mut out = Sink::new(room);
    let written = s.bytes().try_for_each(|b| match b {
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
            out.push(char::from(b))
        }
        b' ' => out.push('+'),
        b => out.push_str(&format!("%{b:02X}")),
    });
    within(written.map(|()| out.into_string()))
}

/// Calls `name` with arguments already checked against its [`signature`]. `callee` is the
/// source text of the first argument (what `call` names in its error). A string it returns is at
/// most `room` bytes long; one that would be longer is refused before it is built.
pub fn call(name: &str, args: &[Value], data: &DataView, callee: &str, room: usize) -> Result {
    let first = args.first().unwrap_or(&Value::Nil);
    match name {
        "label" => {
            let key = string_arg(first);
            match data.labels.get(key) {
                Some(value) if value.len() > room => Err(over_budget_message()),
                Some(value) => Ok(Value::str(value)),
                None => Err(format!("label {key} not found")),
            }
        }
        "not" => Ok(Value::Bool(!first.truth())),
        "len" => match first {
            Value::Str(s) => Ok(Value::Int(s.len() as i64)),
            Value::Nil => Err("reflect: call of reflect.Value.Type on zero Value".to_owned()),
            other => Err(format!("len of type {}", type_of(other, data))),
        },
        "print" => within(super::fmt::sprint(args, data, room)),
        "println" => within(super::fmt::sprintln(args, data, room)),
        "printf" => within(super::fmt::sprintf(
            string_arg(first),
            args.get(1..).unwrap_or(&[]),
            data,
            room,
        )),
        "html" | "js" | "urlquery" => {
            let input =
                escaper_input(args, data, room).map_err(|OverBudget| over_budget_message())?;
            match name {
                "html" => escape(&input, room, html_escape),
                "js" => escape(&input, room, js_escape),
                _ => query_escape(&input, room),
            }
        }
        "eq" => {
            let rest = args.get(1..).unwrap_or(&[]);
            if rest.is_empty() {
                return Err("missing argument for comparison".to_owned());
            }
            for other in rest {
                if equal(first, other, data)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            let second = args.get(1).unwrap_or(&Value::Nil);
            let result = match name {
                "ne" => !equal(first, second, data)?,
                "lt" => less(first, second, data)?,
                "le" => less(first, second, data)? || equal(first, second, data)?,
                "gt" => !(less(first, second, data)? || equal(first, second, data)?),
                _ => !less(first, second, data)?,
            };
            Ok(Value::Bool(result))
        }
        "index" => {
            if *first == Value::Nil {
                return Err("index of untyped nil".to_owned());
            }
            let mut value = first.clone();
            for index in args.get(1..).unwrap_or(&[]) {
                value = match &value {
                    Value::Str(s) => {
                        let i = index_arg(index, s.len(), data)?;
                        match s.as_bytes().get(i) {
                            Some(b) => Value::Uint8(*b),
                            None => return Err("reflect: string index out of range".to_owned()),
                        }
                    }
                    other => {
                        return Err(format!("can't index item of type {}", type_of(other, data)))
                    }
                };
            }
            Ok(value)
        }
        "slice" => {
            let Value::Str(s) = first else {
                return Err(match first {
                    Value::Nil => "slice of untyped nil".to_owned(),
                    other => format!("can't slice item of type {}", type_of(other, data)),
                });
            };
            let indexes = args.get(1..).unwrap_or(&[]);
            if indexes.len() > 3 {
                return Err(format!("too many slice indexes: {}", indexes.len()));
            }
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".to_owned());
            }
            let mut bounds = [0, s.len()];
            for (i, index) in indexes.iter().enumerate() {
                bounds[i] = index_arg(index, s.len(), data)?;
            }
            if bounds[0] > bounds[1] {
                return Err(format!(
                    "invalid slice index: {} > {}",
                    bounds[0], bounds[1]
                ));
            }
            let bytes = s.as_bytes().get(bounds[0]..bounds[1]).unwrap_or(&[]);
            // A cut inside a character shows as U+FFFD, at most three bytes for each one cut.
            if bytes.len() > room {
                return Err(over_budget_message());
            }
            within(Ok(String::from_utf8_lossy(bytes).into_owned()))
        }
        "call" => match first {
            Value::Nil => Err("call of nil".to_owned()),
            other => Err(format!(
                "non-function {callee} of type {}",
                type_of(other, data)
            )),
        },
        other => Err(format!(
            "{} is not a defined function",
            super::quote::go_quote(other)
        )),
    }
}
