//! Go's string quoting (`strconv.Quote`, `%q`) and unquoting (`strconv.Unquote`), which template
//! messages and string literals depend on.

/// Go's `strconv.IsPrint`, approximated: not a control, format, separator (other than the
/// ASCII space) or unassigned character.
pub fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{E000}'..='\u{F8FF}' | '\u{FFFE}' | '\u{FFFF}'))
}

/// `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_print(c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
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
