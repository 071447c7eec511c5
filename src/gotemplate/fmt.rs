//! The parts of Go's `fmt` that templates reach through `print`, `printf` and `println`, for the
//! value kinds templates here produce: `doPrintf` (flags, argument indexes, `*` and literal widths
//! and precisions with Go's limits, the `%!` error notation), `printArg` and the raw formatter,
//! ported from Go's own source so verdicts and text match it (pinned by the differential test).
//!
//! Everything is written into a [`Sink`] with the caller's remaining budget: a width of ten
//! million or a precision of a hundred million is refused before it allocates, where Go would
//! build the string.

use super::ftoa::format_float;
use super::quote::{can_backquote, is_print, write_quoted, write_quoted_rune};
use super::sink::{OverBudget, Sink};
use super::value::{DataView, Value};

/// Go's `tooLarge`: a width, precision or argument index beyond a million is no number.
const TOO_LARGE: i64 = 1_000_000;

type Result<T = ()> = std::result::Result<T, OverBudget>;

/// `fmt.Sprint`: operands in `%v`, a space between two that are not strings.
pub fn sprint(args: &[Value], data: &DataView, limit: usize) -> Result<String> {
    let mut out = Sink::new(limit);
    let mut printer = Printer::new(&mut out, data);
    let mut previous_string = false;
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::Str(_));
        if i > 0 && !is_string && !previous_string {
            printer.out.push(' ')?;
        }
        printer.print_arg(arg, 'v')?;
        previous_string = is_string;
    }
    Ok(out.into_string())
}

/// `fmt.Sprintln`: operands in `%v`, spaces between all, a newline after the last.
pub fn sprintln(args: &[Value], data: &DataView, limit: usize) -> Result<String> {
    let mut out = Sink::new(limit);
    let mut printer = Printer::new(&mut out, data);
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            printer.out.push(' ')?;
        }
        printer.print_arg(arg, 'v')?;
    }
    out.push('\n')?;
    Ok(out.into_string())
}

/// `fmt.Sprintf`.
pub fn sprintf(format: &str, args: &[Value], data: &DataView, limit: usize) -> Result<String> {
    let mut out = Sink::new(limit);
    Printer::new(&mut out, data).do_printf(format, args)?;
    Ok(out.into_string())
}

/// The flags of one directive (Go's `fmtFlags`).
#[derive(Debug, Default, Clone, Copy)]
struct Flags {
    wid_present: bool,
    prec_present: bool,
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    /// `%+v` and `%#v`: set in place of `plus` and `sharp` for the `v` verb.
    plus_v: bool,
    sharp_v: bool,
}

/// Go's `pp` and `fmt` in one: the output and the current directive's flags.
struct Printer<'o, 'd, 'v> {
    out: &'o mut Sink,
    data: &'d DataView<'v>,
    f: Flags,
    wid: usize,
    prec: usize,
}

/// Where the printf loop is: which operand is next, and what argument indexes did.
struct Cursor {
    arg_num: usize,
    /// An explicit `[n]` index was used somewhere: unused operands are not reported.
    reordered: bool,
    /// The last `[n]` index of this directive was valid.
    good_arg_num: bool,
}

impl<'o, 'd, 'v> Printer<'o, 'd, 'v> {
    fn new(out: &'o mut Sink, data: &'d DataView<'v>) -> Self {
        Self {
            out,
            data,
            f: Flags::default(),
            wid: 0,
            prec: 0,
        }
    }

    fn clear_flags(&mut self) {
        self.f = Flags::default();
        self.wid = 0;
        self.prec = 0;
    }

    /// Go's `doPrintf`.
    fn do_printf(&mut self, format: &str, a: &[Value]) -> Result {
        let b = format.as_bytes();
        let end = b.len();
        let closing = ClosingBrackets::of(b);
        let mut cur = Cursor {
            arg_num: 0,
            reordered: false,
            good_arg_num: true,
        };
        let mut i = 0;
        'format: while i < end {
            cur.good_arg_num = true;
            let literal = i;
            while i < end && b[i] != b'%' {
                i += 1;
            }
            if i > literal {
                self.out.push_str(&format[literal..i])?;
            }
            if i >= end {
                break;
            }
            i += 1;
            self.clear_flags();
            while i < end {
                match b[i] {
                    b'#' => self.f.sharp = true,
                    b'0' => self.f.zero = true,
                    b'+' => self.f.plus = true,
                    b'-' => self.f.minus = true,
                    b' ' => self.f.space = true,
                    c => {
                        // Go's fast path: a lower-case verb right after the flags.
                        if c.is_ascii_lowercase() && cur.arg_num < a.len() {
                            if c == b'v' || c == b'w' {
                                self.flags_for_v();
                            }
                            self.print_arg(&a[cur.arg_num], char::from(c))?;
                            cur.arg_num += 1;
                            i += 1;
                            continue 'format;
                        }
                        break;
                    }
                }
                i += 1;
            }
            let mut after_index;
            (i, after_index) = arg_number(&mut cur, b, &closing, i, a.len());
            if i < end && b[i] == b'*' {
                i += 1;
                let (width, present) = int_from_arg(a, &mut cur.arg_num);
                self.f.wid_present = present;
                if !present {
                    self.out.push_str("%!(BADWIDTH)")?;
                }
                if width < 0 {
                    self.f.minus = true;
                    self.f.zero = false;
                }
                self.wid = width.unsigned_abs() as usize;
                after_index = false;
            } else {
                let (width, present, next) = parse_num(b, i, end);
                (self.wid, self.f.wid_present, i) = (width, present, next);
                if after_index && present {
                    cur.good_arg_num = false;
                }
            }
            if i + 1 < end && b[i] == b'.' {
                i += 1;
                if after_index {
                    cur.good_arg_num = false;
                }
                (i, after_index) = arg_number(&mut cur, b, &closing, i, a.len());
                if i < end && b[i] == b'*' {
                    i += 1;
                    let (precision, mut present) = int_from_arg(a, &mut cur.arg_num);
                    // A negative precision makes no sense.
                    if precision < 0 {
                        present = false;
                    }
                    self.prec = if present { precision as usize } else { 0 };
                    self.f.prec_present = present;
                    if !present {
                        self.out.push_str("%!(BADPREC)")?;
                    }
                    after_index = false;
                } else {
                    let (precision, present, next) = parse_num(b, i, end);
                    i = next;
                    self.prec = if present { precision } else { 0 };
                    self.f.prec_present = true;
                }
            }
            if !after_index {
                (i, _) = arg_number(&mut cur, b, &closing, i, a.len());
            }
            let Some(verb) = format.get(i..).and_then(|rest| rest.chars().next()) else {
                self.out.push_str("%!(NOVERB)")?;
                break;
            };
            i += verb.len_utf8();
            if verb == '%' {
                // Percent takes no operand and ignores width and precision.
                self.out.push('%')?;
            } else if !cur.good_arg_num {
                self.error_verb(verb, "BADINDEX")?;
            } else if cur.arg_num >= a.len() {
                self.error_verb(verb, "MISSING")?;
            } else {
                if verb == 'v' || verb == 'w' {
                    self.flags_for_v();
                }
                self.print_arg(&a[cur.arg_num], verb)?;
                cur.arg_num += 1;
            }
        }
        if !cur.reordered && cur.arg_num < a.len() {
            self.clear_flags();
            self.out.push_str("%!(EXTRA ")?;
            for (i, arg) in a[cur.arg_num..].iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ")?;
                }
                self.typed_value(arg)?;
            }
            self.out.push(')')?;
        }
        Ok(())
    }

    /// `%+v` and `%#v` are flagless formats of their own: the flags move to `plus_v`/`sharp_v`.
    fn flags_for_v(&mut self) {
        self.f.sharp_v = self.f.sharp;
        self.f.sharp = false;
        self.f.plus_v = self.f.plus;
        self.f.plus = false;
    }

    /// `%!verb(WHAT)`.
    fn error_verb(&mut self, verb: char, what: &str) -> Result {
        self.out.push_str("%!")?;
        self.out.push(verb)?;
        self.out.push('(')?;
        self.out.push_str(what)?;
        self.out.push(')')
    }

    /// `type=value` (or `<nil>`), as bad verbs and extra operands show an operand.
    fn typed_value(&mut self, value: &Value) -> Result {
        if *value == Value::Nil {
            return self.out.push_str("<nil>");
        }
        self.out.push_str(&value.type_name(self.data))?;
        self.out.push('=')?;
        self.print_arg(value, 'v')
    }

    /// Go's `printArg`.
    fn print_arg(&mut self, value: &Value, verb: char) -> Result {
        match (value, verb) {
            (Value::Nil, 'T' | 'v') => return self.pad("<nil>"),
            (Value::Nil, _) | (_, 'p') => return self.bad_verb(value, verb),
            (_, 'T') => {
                let name = value.type_name(self.data);
                return self.fmt_s(&name);
            }
            _ => {}
        }
        match value {
            Value::Bool(b) => match verb {
                't' | 'v' => self.pad(if *b { "true" } else { "false" }),
                _ => self.bad_verb(value, verb),
            },
            Value::Int(i) => self.print_integer(value, *i as u64, true, verb),
            Value::Uint8(u) => self.print_integer(value, u64::from(*u), false, verb),
            Value::Float(v) => self.print_float(value, *v, verb),
            Value::Complex(re, im) => self.print_complex(value, *re, *im, verb),
            Value::Str(s) => self.print_string(value, s, verb),
            // `%w` wraps errors only, and the struct is refused whole.
            Value::Data if verb == 'w' => self.bad_verb(value, verb),
            Value::Data => self.print_struct(verb),
            Value::Nil => Ok(()),
        }
    }

    /// Go's `badVerb`: `%!verb(type=value)`, the value printed under the same flags.
    fn bad_verb(&mut self, value: &Value, verb: char) -> Result {
        self.out.push_str("%!")?;
        self.out.push(verb)?;
        self.out.push('(')?;
        self.typed_value(value)?;
        self.out.push(')')
    }

    /// Go's `pp.fmtInteger`.
    fn print_integer(&mut self, value: &Value, v: u64, signed: bool, verb: char) -> Result {
        match verb {
            'v' if self.f.sharp_v && !signed => self.fmt_0x64(v, true),
            'v' | 'd' => self.fmt_integer(v, 10, signed, verb, LOWER),
            'b' => self.fmt_integer(v, 2, signed, verb, LOWER),
            'o' | 'O' => self.fmt_integer(v, 8, signed, verb, LOWER),
            'x' => self.fmt_integer(v, 16, signed, verb, LOWER),
            'X' => self.fmt_integer(v, 16, signed, verb, UPPER),
            'c' => {
                let c = u32::try_from(v)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                self.pad(c.encode_utf8(&mut [0; 4]))
            }
            'q' => {
                let quoted = self.body(|s| write_quoted_rune(s, v, self.f.plus))?;
                self.pad(&quoted)
            }
            'U' => self.fmt_unicode(v),
            _ => self.bad_verb(value, verb),
        }
    }

    /// Go's `fmt0x64`: hexadecimal, with or without `0x` whatever the sharp flag says.
    fn fmt_0x64(&mut self, v: u64, leading_0x: bool) -> Result {
        let sharp = self.f.sharp;
        self.f.sharp = leading_0x;
        let result = self.fmt_integer(v, 16, false, 'v', LOWER);
        self.f.sharp = sharp;
        result
    }

    /// Go's `fmt.fmtInteger`: sign, base prefix, zeros for precision (or zero padding), digits.
    fn fmt_integer(
        &mut self,
        v: u64,
        base: u64,
        signed: bool,
        verb: char,
        digits: &[u8; 17],
    ) -> Result {
        let negative = signed && (v as i64) < 0;
        let mut u = if negative { v.wrapping_neg() } else { v };
        let mut prec = 0;
        if self.f.prec_present {
            prec = self.prec;
            // Precision 0 and value 0 print nothing but the padding.
            if prec == 0 && u == 0 {
                return self.without_zero_flag(|p| p.write_padding(p.wid));
            }
        } else if self.f.zero && !self.f.minus && self.f.wid_present {
            prec = self.wid;
            if negative || self.f.plus || self.f.space {
                // Leave room for the sign.
                prec = prec.saturating_sub(1);
            }
        }
        let mut number = Vec::with_capacity(64);
        loop {
            number.push(digits[(u % base) as usize]);
            u /= base;
            if u == 0 {
                break;
            }
        }
        number.reverse();
        let zeros = prec.saturating_sub(number.len());
        let mut prefix = String::new();
        if negative {
            prefix.push('-');
        } else if self.f.plus {
            prefix.push('+');
        } else if self.f.space {
            prefix.push(' ');
        }
        if verb == 'O' {
            prefix.push_str("0o");
        }
        if self.f.sharp {
            match base {
                2 => prefix.push_str("0b"),
                8 if zeros == 0 && number.first() != Some(&b'0') => prefix.push('0'),
                16 => {
                    prefix.push('0');
                    prefix.push(char::from(digits[16]));
                }
                _ => {}
            }
        }
        let body = self.body(|s| {
            s.push_str(&prefix)?;
            s.repeat(b'0', zeros)?;
            s.push_str(std::str::from_utf8(&number).unwrap_or_default())
        })?;
        // Zero padding was handled as precision above, or is ignored for an explicit one.
        self.without_zero_flag(|p| p.pad(&body))
    }

    /// Go's `fmtUnicode`: `U+0078`, or with the sharp flag `U+0078 'x'`.
    fn fmt_unicode(&mut self, u: u64) -> Result {
        let prec = if self.f.prec_present && self.prec > 4 {
            self.prec
        } else {
            4
        };
        let hex = format!("{u:X}");
        let printable = u32::try_from(u)
            .ok()
            .and_then(char::from_u32)
            .filter(|c| self.f.sharp && is_print(*c));
        let body = self.body(|s| {
            s.push_str("U+")?;
            s.repeat(b'0', prec.saturating_sub(hex.len()))?;
            s.push_str(&hex)?;
            if let Some(c) = printable {
                s.push_str(" '")?;
                s.push(c)?;
                s.push('\'')?;
            }
            Ok(())
        })?;
        self.without_zero_flag(|p| p.pad(&body))
    }

    /// Go's `pp.fmtFloat`: the verb's default precision and format letter.
    fn print_float(&mut self, value: &Value, v: f64, verb: char) -> Result {
        match verb {
            'v' => self.fmt_float(v, b'g', None),
            'b' | 'g' | 'G' | 'x' | 'X' => self.fmt_float(v, verb as u8, None),
            'f' | 'e' | 'E' => self.fmt_float(v, verb as u8, Some(6)),
            'F' => self.fmt_float(v, b'f', Some(6)),
            _ => self.bad_verb(value, verb),
        }
    }

    /// Go's `pp.fmtComplex`: `(real+imagi)`, the imaginary part always signed.
    fn print_complex(&mut self, value: &Value, re: f64, im: f64, verb: char) -> Result {
        if !matches!(
            verb,
            'v' | 'b' | 'g' | 'G' | 'x' | 'X' | 'f' | 'F' | 'e' | 'E'
        ) {
            return self.bad_verb(value, verb);
        }
        let plus = self.f.plus;
        self.out.push('(')?;
        self.print_float(value, re, verb)?;
        self.f.plus = true;
        self.print_float(value, im, verb)?;
        self.out.push_str("i)")?;
        self.f.plus = plus;
        Ok(())
    }

    /// Go's `fmt.fmtFloat`: sign handling, the sharp flag's decimal point and trailing zeros,
    /// and zero padding after the sign. `default_prec` is `None` for Go's -1 (shortest).
    fn fmt_float(&mut self, v: f64, verb: u8, default_prec: Option<usize>) -> Result {
        let prec = if self.f.prec_present {
            Some(self.prec)
        } else {
            default_prec
        };
        let formatted = format_float(v, verb, prec, self.out.room())?;
        let mut num = Sink::new(self.out.room().saturating_add(1));
        if !formatted.starts_with(['-', '+']) {
            num.push('+')?;
        }
        num.push_str(&formatted)?;
        let mut num = num.into_string();
        if self.f.space && num.starts_with('+') && !self.f.plus {
            num.replace_range(..1, " ");
        }
        if matches!(num.as_bytes().get(1), Some(b'I' | b'N')) {
            // Infinities and NaN are no numbers to pad with zeros.
            let show_sign = num.as_bytes().get(1) != Some(&b'N') || self.f.space || self.f.plus;
            let text = if show_sign { &num[..] } else { &num[1..] };
            return self.without_zero_flag(|p| p.pad(text));
        }
        if self.f.sharp && verb != b'b' {
            num = self.sharp_float(num, verb, prec)?;
        }
        let first = num.as_bytes().first().copied().unwrap_or(b'+');
        if self.f.plus || first != b'+' {
            if self.f.zero && !self.f.minus && self.f.wid_present && self.wid > num.len() {
                // Zero padding goes after the sign.
                self.out.push(char::from(first))?;
                self.write_padding(self.wid - num.len())?;
                return self.out.push_str(&num[1..]);
            }
            return self.pad(&num);
        }
        self.pad(&num[1..])
    }

    /// The sharp flag forces a decimal point and keeps (or restores) trailing zeros.
    fn sharp_float(&self, num: String, verb: u8, prec: Option<usize>) -> Result<String> {
        let mut digits: i64 = match verb {
            b'g' | b'G' | b'x' => prec.map_or(6, |p| p as i64),
            _ => 0,
        };
        let bytes = num.as_bytes();
        let mut cut = bytes.len();
        let mut has_point = false;
        let mut saw_nonzero = false;
        for (i, &c) in bytes.iter().enumerate().skip(1) {
            match c {
                b'.' => has_point = true,
                b'p' | b'P' => {
                    cut = i;
                    break;
                }
                b'e' | b'E' if verb != b'x' && verb != b'X' => {
                    cut = i;
                    break;
                }
                _ => {
                    saw_nonzero |= c != b'0';
                    if saw_nonzero {
                        digits -= 1;
                    }
                }
            }
        }
        let (head, tail) = num.split_at(cut);
        let mut out = Sink::new(self.out.room().saturating_add(1));
        out.push_str(head)?;
        if !has_point {
            // A lone zero digit counts once.
            if head.len() == 2 && head.as_bytes().get(1) == Some(&b'0') {
                digits -= 1;
            }
            out.push('.')?;
        }
        out.repeat(b'0', usize::try_from(digits).unwrap_or(0))?;
        out.push_str(tail)?;
        Ok(out.into_string())
    }

    /// Go's `pp.fmtString`.
    fn print_string(&mut self, value: &Value, s: &str, verb: char) -> Result {
        match verb {
            'v' if self.f.sharp_v => self.fmt_q(s),
            'v' | 's' => self.fmt_s(s),
            'x' => self.fmt_sx(s, LOWER),
            'X' => self.fmt_sx(s, UPPER),
            'q' => self.fmt_q(s),
            _ => self.bad_verb(value, verb),
        }
    }

    /// Go's `printValue` of the root data, an anonymous struct of strings: `{m z}`,
    /// `{Mesh:m Zone:z}` (`%+v`), `struct { Mesh string; Zone string }{Mesh:"m", Zone:"z"}`
    /// (`%#v`); each field under the directive's verb and flags.
    fn print_struct(&mut self, verb: char) -> Result {
        if self.f.sharp_v {
            self.out.push_str(&self.data.type_name())?;
        }
        self.out.push('{')?;
        for (i, (name, field)) in self.data.fields.iter().enumerate() {
            if i > 0 {
                self.out.push_str(if self.f.sharp_v { ", " } else { " " })?;
            }
            if self.f.plus_v || self.f.sharp_v {
                self.out.push_str(name)?;
                self.out.push(':')?;
            }
            self.print_string(&Value::str(field), field, verb)?;
        }
        self.out.push('}')
    }

    /// Go's `fmtS`: the string cut to the precision (in characters), padded.
    fn fmt_s(&mut self, s: &str) -> Result {
        let s = self.truncate(s);
        self.pad(s)
    }

    fn truncate<'s>(&self, s: &'s str) -> &'s str {
        if !self.f.prec_present {
            return s;
        }
        match s.char_indices().nth(self.prec) {
            Some((cut, _)) => &s[..cut],
            None => s,
        }
    }

    /// Go's `fmtSbx` for strings: each byte as two hexadecimal digits, optionally `0x`-prefixed
    /// and space-separated.
    fn fmt_sx(&mut self, s: &str, digits: &[u8; 17]) -> Result {
        let mut length = s.len();
        if self.f.prec_present && self.prec < length {
            length = self.prec;
        }
        let mut width = 2 * length;
        if width == 0 {
            if self.f.wid_present {
                self.write_padding(self.wid)?;
            }
            return Ok(());
        }
        if self.f.space {
            if self.f.sharp {
                width *= 2;
            }
            width += length - 1;
        } else if self.f.sharp {
            width += 2;
        }
        let padding = if self.f.wid_present && self.wid > width {
            self.wid - width
        } else {
            0
        };
        if !self.f.minus {
            self.write_padding(padding)?;
        }
        let prefix = [b'0', digits[16]];
        let prefix = std::str::from_utf8(&prefix).unwrap_or_default();
        if self.f.sharp {
            self.out.push_str(prefix)?;
        }
        for (i, byte) in s.bytes().take(length).enumerate() {
            if self.f.space && i > 0 {
                self.out.push(' ')?;
                if self.f.sharp {
                    self.out.push_str(prefix)?;
                }
            }
            self.out.push(char::from(digits[usize::from(byte >> 4)]))?;
            self.out.push(char::from(digits[usize::from(byte & 0xF)]))?;
        }
        if self.f.minus {
            self.write_padding(padding)?;
        }
        Ok(())
    }

    /// Go's `fmtQ`: a double-quoted Go string, or backquoted with the sharp flag when it can be.
    fn fmt_q(&mut self, s: &str) -> Result {
        let s = self.truncate(s);
        let quoted = if self.f.sharp && can_backquote(s) {
            self.body(|out| {
                out.push('`')?;
                out.push_str(s)?;
                out.push('`')
            })?
        } else {
            self.body(|out| write_quoted(out, s, '"', self.f.plus))?
        };
        self.pad(&quoted)
    }

    /// Builds text that will be padded, within what is left of the budget.
    fn body(&self, build: impl FnOnce(&mut Sink) -> Result) -> Result<String> {
        let mut body = Sink::new(self.out.room());
        build(&mut body)?;
        Ok(body.into_string())
    }

    /// Runs `f` with the zero flag off (for numbers whose zeros are already placed, and texts
    /// that are no numbers).
    fn without_zero_flag(&mut self, f: impl FnOnce(&mut Self) -> Result) -> Result {
        let zero = self.f.zero;
        self.f.zero = false;
        let result = f(self);
        self.f.zero = zero;
        result
    }

    /// Go's `writePadding`: zeros only on the left, spaces otherwise.
    fn write_padding(&mut self, n: usize) -> Result {
        let byte = if self.f.zero && !self.f.minus {
            b'0'
        } else {
            b' '
        };
        self.out.repeat(byte, n)
    }

    /// Go's `pad`: `s` padded to the width (counted in characters) on the left, or on the
    /// right with the minus flag.
    fn pad(&mut self, s: &str) -> Result {
        if !self.f.wid_present || self.wid == 0 {
            return self.out.push_str(s);
        }
        let padding = self.wid.saturating_sub(s.chars().count());
        if self.f.minus {
            self.out.push_str(s)?;
            self.write_padding(padding)
        } else {
            self.write_padding(padding)?;
            self.out.push_str(s)
        }
    }
}

const LOWER: &[u8; 17] = b"0123456789abcdefx";
const UPPER: &[u8; 17] = b"0123456789ABCDEFX";

/// Go's `parsenum`: the number at `start`, whether there was one, and where it ends. A number
/// that grows past a million stops being one, and the rest of the format goes with it.
fn parse_num(b: &[u8], start: usize, end: usize) -> (usize, bool, usize) {
    if start >= end {
        return (0, false, end);
    }
    let mut num: i64 = 0;
    let mut is_num = false;
    let mut i = start;
    while i < end && b[i].is_ascii_digit() {
        if num > TOO_LARGE {
            return (0, false, end);
        }
        num = num * 10 + i64::from(b[i] - b'0');
        is_num = true;
        i += 1;
    }
    (num as usize, is_num, i)
}

/// Go's `intFromArg`: the operand as a `*` width or precision, and whether it is an integer of
/// usable size. Moves past the operand when there is one.
fn int_from_arg(a: &[Value], arg_num: &mut usize) -> (i64, bool) {
    let Some(value) = a.get(*arg_num) else {
        return (0, false);
    };
    *arg_num += 1;
    let num = match value {
        Value::Int(i) => *i,
        Value::Uint8(u) => i64::from(*u),
        _ => return (0, false),
    };
    if !(-TOO_LARGE..=TOO_LARGE).contains(&num) {
        return (0, false);
    }
    (num, true)
}

/// For each position of a format, the nearest `]` at or after it: Go looks for the end of every
/// `[n]` index afresh, which on a format of many unclosed `[` would cost quadratic time.
struct ClosingBrackets(Vec<usize>);

impl ClosingBrackets {
    fn of(b: &[u8]) -> Self {
        if !b.contains(&b'[') {
            return Self(Vec::new());
        }
        let mut next = vec![usize::MAX; b.len() + 1];
        for i in (0..b.len()).rev() {
            next[i] = if b[i] == b']' { i } else { next[i + 1] };
        }
        Self(next)
    }

    fn from(&self, i: usize) -> Option<usize> {
        self.0.get(i).copied().filter(|at| *at != usize::MAX)
    }
}

/// Go's `argNumber`: an explicit `[n]` operand index at `i` selects the next operand. Returns
/// where the format continues and whether an index was found.
fn arg_number(
    cur: &mut Cursor,
    b: &[u8],
    closing: &ClosingBrackets,
    i: usize,
    num_args: usize,
) -> (usize, bool) {
    if b.get(i) != Some(&b'[') {
        return (i, false);
    }
    cur.reordered = true;
    let (index, width, ok) = parse_arg_number(b, closing, i);
    if let Some(index) = index.filter(|index| ok && *index < num_args) {
        cur.arg_num = index;
        return (i + width, true);
    }
    cur.good_arg_num = false;
    (i + width, ok)
}

/// Go's `parseArgNumber` of the `[n]` at `i`: the zero-based index (`None` for `[0]`, which
/// parses but names no operand), the bytes it takes, and whether it parsed.
fn parse_arg_number(b: &[u8], closing: &ClosingBrackets, i: usize) -> (Option<usize>, usize, bool) {
    // There must be at least 3 bytes: `[n]`.
    if b.len() - i < 3 {
        return (None, 1, false);
    }
    let Some(close) = closing.from(i + 1) else {
        return (None, 1, false);
    };
    let (n, ok, after) = parse_num(b, i + 1, close);
    if !ok || after != close {
        return (None, close + 1 - i, false);
    }
    (n.checked_sub(1), close + 1 - i, true)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn printf(format: &str, args: &[Value]) -> String {
        let labels = BTreeMap::new();
        let data = DataView {
            fields: &[("Mesh", "m"), ("Zone", "z")],
            labels: &labels,
        };
        sprintf(format, args, &data, 1 << 20).unwrap()
    }

    /// Expectations taken from Go 1.27's `fmt.Sprintf`.
    #[test]
    fn directives_match_go() {
        let cases: &[(&str, &[Value], &str)] = &[
            ("%5z", &[Value::Int(3)], "%!z(int=    3)"),
            ("%5.", &[Value::Int(1)], "%!.(int=    1)"),
            (
                "%1000000000000d",
                &[Value::Int(1)],
                "%!(NOVERB)%!(EXTRA int=1)",
            ),
            (
                "%*d",
                &[Value::Int(1_000_001), Value::Int(1)],
                "%!(BADWIDTH)1",
            ),
            ("%.*d", &[Value::Int(-1), Value::Int(1)], "%!(BADPREC)1"),
            ("%-*d|", &[Value::Int(-3), Value::Int(1)], "1  |"),
            ("%[2]d %[1]d", &[Value::Int(1), Value::Int(2)], "2 1"),
            ("%[3]d", &[Value::Int(1)], "%!d(BADINDEX)"),
            ("%d %d", &[Value::Int(1)], "1 %!d(MISSING)"),
            (
                "%#o %#x %#b %O",
                &[Value::Int(8), Value::Int(255), Value::Int(5), Value::Int(8)],
                "010 0xff 0b101 0o10",
            ),
            (
                "%08.3f|%-8.2e|%+.0f",
                &[
                    Value::Float(-3.25159),
                    Value::Float(1234.5),
                    Value::Float(2.5),
                ],
                "-003.252|1.23e+03|+2",
            ),
            (
                "%#g %#.3x",
                &[Value::Float(1.0), Value::Float(1.0)],
                "1.00000 0x1.000p+00",
            ),
            (
                "%q %+q %#q",
                &[Value::str("é\n"), Value::str("é"), Value::str("a`b")],
                "\"é\\n\" \"\\u00e9\" \"a`b\"",
            ),
            (
                "% x|%#X",
                &[Value::str("ab"), Value::str("ab")],
                "61 62|0X6162",
            ),
            (
                "%c %q %U %#U",
                &[
                    Value::Int(65),
                    Value::Int(66),
                    Value::Int(0x1F600),
                    Value::Int(0x41),
                ],
                "A 'B' U+1F600 U+0041 'A'",
            ),
            (
                "%v %+v %#v",
                &[Value::Data, Value::Data, Value::Data],
                "{m z} {Mesh:m Zone:z} struct { Mesh string; Zone string }{Mesh:\"m\", Zone:\"z\"}",
            ),
            ("%d", &[Value::Data], "{%!d(string=m) %!d(string=z)}"),
            (
                "%v %d %T",
                &[Value::Nil, Value::Nil, Value::Nil],
                "<nil> %!d(<nil>) <nil>",
            ),
            (
                "%.2s|%5.1s|%x",
                &[Value::str("héllo"), Value::str("ab"), Value::Uint8(255)],
                "hé|    a|ff",
            ),
            (
                "%v %.3v %5.1f",
                &[
                    Value::Complex(1.0, -2.0),
                    Value::Float(1.0 / 3.0),
                    Value::Complex(1.0, 2.0),
                ],
                "(1-2i) 0.333 (  1.0 +2.0i)",
            ),
        ];
        for (format, args, want) in cases {
            assert_eq!(printf(format, args), *want, "{format}");
        }
    }

    #[test]
    fn widths_and_precisions_past_the_budget_are_refused_before_they_allocate() {
        let labels = BTreeMap::new();
        let data = DataView {
            fields: &[],
            labels: &labels,
        };
        for (format, args) in [
            ("%9999999d", vec![Value::Int(1)]),
            ("%*d", vec![Value::Int(1_000_000), Value::Int(1)]),
            ("%.1000000d", vec![Value::Int(1)]),
            ("%.100000f", vec![Value::Float(1.0)]),
            ("%.70000f", vec![Value::Float(1.0)]),
            ("%#.1000000g", vec![Value::Float(1.0)]),
            ("%-9999999s|", vec![Value::str("x")]),
        ] {
            assert_eq!(
                sprintf(format, &args, &data, 16 * 1024),
                Err(OverBudget),
                "{format}"
            );
        }
    }
}
