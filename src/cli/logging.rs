//! Log output. Request fields (names, namespaces, uids) come from whoever sent the request, so
//! no format may print them raw: a newline in a name would forge a log line, an escape sequence
//! would drive the reader's terminal. JSON escapes them by itself; the text format here escapes
//! every control character in every field and message.

use std::fmt;
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;

use super::LogFormat;

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .fmt_fields(EscapedFields)
            // Colours only for a person at a terminal; collected logs get plain text.
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Fields as tracing-subscriber's text format writes them (the message bare, the others
/// `name=value`), with control characters escaped.
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = Escaping {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Escaping<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visit for Escaping<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_ok() {
            self.result = self.write(field.name(), &format!("{value:?}"));
        }
    }
}

impl Escaping<'_, '_> {
    fn write(&mut self, name: &str, text: &str) -> fmt::Result {
        if !self.first {
            self.writer.write_char(' ')?;
        }
        self.first = false;
        if name != "message" {
            write_escaped(self.writer, name)?;
            self.writer.write_char('=')?;
        }
        write_escaped(self.writer, text)
    }
}

/// Writes `text` with each control character as an escape (`\n`, `\u{1b}`).
fn write_escaped(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    for c in text.chars() {
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c.is_control() => write!(out, "\\u{{{:x}}}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        let mut out = String::new();
        write_escaped(&mut out, "web\nINFO forged\u{1b}[31mred\u{7f}\tok é").unwrap();
        assert_eq!(out, "web\\nINFO forged\\u{1b}[31mred\\u{7f}\\tok é");
    }
}
