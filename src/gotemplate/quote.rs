//! Go's string quoting (`strconv.Quote`, `%q`) and unquoting (`strconv.Unquote`), which template
//! messages and string literals depend on.

use super::sink::{OverBudget, Sink};

/// Go's `strconv.IsPrint`, approximated: not a control, format, separator (other than the
/// ASCII space), private-use or non-character code point. (Go also refuses unassigned ones,
/// which would take Unicode's tables to know.)
pub fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    let code = u32::from(c);
    let noncharacter = code & 0xFFFE == 0xFFFE || (0xFDD0..=0xFDEF).contains(&code);
    // Planes 15 and 16 are private use; U+E0000–U+E007F are the tag format characters.
    let private_or_tag = code >= 0xF0000 || (0xE0000..=0xE007F).contains(&code);
    !(c.is_control()
        || c.is_whitespace()
        || noncharacter
        || private_or_tag
        || matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{E000}'..='\u{F8FF}'))
}

/// `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = Sink::new(usize::MAX);
    // An unlimited sink cannot refuse a write.
    let _ = write_quoted(&mut out, s, '"', false);
    out.into_string()
}

/// Go's `appendQuotedWith`: `s` between `quote`s, escaped as `strconv.Quote` (or, with
/// `ascii_only`, `strconv.QuoteToASCII`) escapes it.
pub fn write_quoted(
    out: &mut Sink,
    s: &str,
    quote: char,
    ascii_only: bool,
) -> Result<(), OverBudget> {
    out.push(quote)?;
    for c in s.chars() {
        write_escaped(out, c, quote, ascii_only)?;
    }
    out.push(quote)
}

/// Go's `strconv.QuoteRune` (or `QuoteRuneToASCII`) of a code point; one that is no valid
/// character quotes as U+FFFD.
pub fn write_quoted_rune(out: &mut Sink, code: u64, ascii_only: bool) -> Result<(), OverBudget> {
    let c = u32::try_from(code)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or(char::REPLACEMENT_CHARACTER);
    out.push('\'')?;
    write_escaped(out, c, '\'', ascii_only)?;
    out.push('\'')
}

/// Go's `appendEscapedRune`.
fn write_escaped(out: &mut Sink, c: char, quote: char, ascii_only: bool) -> Result<(), OverBudget> {
    if c == quote || c == '\\' {
        out.push('\\')?;
        return out.push(c);
    }
    let printable = if ascii_only {
        c.is_ascii() && is_print(c)
    } else {
        is_print(c)
    };
    if printable {
        return out.push(c);
    }
    let escape = match c {
        '\u{7}' => "\\a",
        '\u{8}' => "\\b",
        '\u{c}' => "\\f",
        '\n' => "\\n",
        '\r' => "\\r",
        '\t' => "\\t",
        '\u{b}' => "\\v",
        c if (c as u32) < 0x80 => return out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => return out.push_str(&format!("\\u{:04x}", c as u32)),
        c => return out.push_str(&format!("\\U{:08x}", c as u32)),
    };
    out.push_str(escape)
}

/// `strconv.CanBackquote`: no control character but tab, no backquote, no byte order mark.
pub fn can_backquote(s: &str) -> bool {
    !s.chars()
        .any(|c| (c < ' ' && c != '\t') || c == '`' || c == '\u{7f}' || c == '\u{feff}')
}

/// `strconv.Unquote` for the literals the lexer produces: `"..."`, `` `...` `` and `'.'`.
/// The error is Go's `invalid syntax`.
pub fn go_unquote(s: &str) -> Result<String, &'static str> {
    const SYNTAX: &str = "invalid syntax";
    let mut chars = s.chars();
    let quote = chars.next().ok_or(SYNTAX)?;
    if !s.ends_with(quote) || s.len() < 2 {
        return Err(SYNTAX);
    }
    let body = &s[quote.len_utf8()..s.len() - quote.len_utf8()];
    if quote == '`' {
        if body.contains('`') {
            return Err(SYNTAX);
        }
        return Ok(body.replace('\r', ""));
    }
    if quote != '"' && quote != '\'' {
        return Err(SYNTAX);
    }
    let mut out = String::new();
    let mut rest = body;
    while !rest.is_empty() {
        if rest.starts_with(quote) && quote == '"' {
            return Err(SYNTAX);
        }
        let (c, tail) = unquote_char(rest, quote)?;
        out.push(c);
        rest = tail;
        if quote == '\'' && !rest.is_empty() {
            return Err(SYNTAX);
        }
    }
    if quote == '\'' && out.chars().count() != 1 {
        return Err(SYNTAX);
    }
    Ok(out)
}

/// `strconv.UnquoteChar`: one (possibly escaped) character and the rest.
pub fn unquote_char(s: &str, quote: char) -> Result<(char, &str), &'static str> {
    const SYNTAX: &str = "invalid syntax";
    let mut chars = s.chars();
    let c = chars.next().ok_or(SYNTAX)?;
    if c == quote && (quote == '\'' || quote == '"') {
        return Err(SYNTAX);
    }
    if c != '\\' {
        if c == '\n' {
            return Err(SYNTAX);
        }
        return Ok((c, chars.as_str()));
    }
    let e = chars.next().ok_or(SYNTAX)?;
    let rest = chars.as_str();
    let simple = match e {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '\\' => Some('\\'),
        '\'' | '"' if e == quote => Some(e),
        _ => None,
    };
    if let Some(c) = simple {
        return Ok((c, rest));
    }
    let (len, radix) = match e {
        'x' => (2, 16),
        'u' => (4, 16),
        'U' => (8, 16),
        '0'..='7' => (2, 8),
        _ => return Err(SYNTAX),
    };
    let digits: String = if radix == 8 {
        std::iter::once(e).chain(rest.chars().take(len)).collect()
    } else {
        rest.chars().take(len).collect()
    };
    let expected = if radix == 8 { 3 } else { len };
    if digits.chars().count() != expected || !digits.chars().all(|d| d.is_digit(radix)) {
        return Err(SYNTAX);
    }
    let value = u32::from_str_radix(&digits, radix).map_err(|_| SYNTAX)?;
    // An octal escape's first digit is the escape letter itself, so `len` more follow either way.
    let tail = rest.get(len..).ok_or(SYNTAX)?;
    if (e == 'x' || radix == 8) && value > 255 {
        return Err(SYNTAX);
    }
    // A byte escape above 0x7f is a raw byte in Go; here it reads as the Latin-1 character,
    // which only matters for templates no SPIFFE ID can use.
    char::from_u32(value).map(|c| (c, tail)).ok_or(SYNTAX)
}
