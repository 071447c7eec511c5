//! Log output. Request fields (names, namespaces, uids) come from whoever sent the request, so
//! no format may print them raw: a newline in a name would forge a log line, an escape sequence
//! would drive the reader's terminal. JSON escapes them by itself; the text format here escapes
//! every control character in every field and message.

use std::fmt::{self, Write as _};
use std::io::{self, IsTerminal};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

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
        .with_writer(Arc::new(StderrLines::new()));
    match format {
        LogFormat::Text => builder
            .fmt_fields(EscapedFields)
            // Colours only for a person at a terminal; collected logs get plain text.
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Standard error for whole log lines, each written by one `write(2)` without a lock in this
/// process. `std::io::stderr()` holds a mutex across the system call, so two workers logging at
/// once made one of them sleep on it: under load, a futex wait and wake and two context
/// switches for most requests. A line of at most `PIPE_BUF` bytes needs no lock: the kernel
/// writes it to a pipe (a container's stderr) in one piece, and appends it to a file without
/// overlapping another. Longer lines take a lock among themselves.
struct StderrLines {
    /// A duplicate of file descriptor 2 (same open file), or `None` if it could not be made.
    fd: Option<std::fs::File>,
    long_lines: Mutex<()>,
}

/// The largest write POSIX makes atomic on a pipe (Linux: 4 096 bytes).
const PIPE_BUF: usize = 4096;

impl StderrLines {
    fn new() -> Self {
        let fd = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(std::fs::File::from);
        Self {
            fd,
            long_lines: Mutex::new(()),
        }
    }
}

impl io::Write for &StderrLines {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.write_all(line)?;
        Ok(line.len())
    }

    /// tracing-subscriber hands each formatted event over in one call.
    fn write_all(&mut self, line: &[u8]) -> io::Result<()> {
        let Some(mut fd) = self.fd.as_ref() else {
            return std::io::stderr().write_all(line);
        };
        if line.len() <= PIPE_BUF {
            return fd.write_all(line);
        }
        let _turn = self.long_lines.lock();
        fd.write_all(line)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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
            self.result = self.write(field.name(), value);
        }
    }
}

impl Escaping<'_, '_> {
    fn write(&mut self, name: &str, value: &dyn fmt::Debug) -> fmt::Result {
        if !self.first {
            self.writer.write_char(' ')?;
        }
        self.first = false;
        let mut out = EscapingWriter(&mut *self.writer);
        if name != "message" {
            out.write_str(name)?;
            out.0.write_char('=')?;
        }
        // Formatted straight through the escaping writer: no string per field.
        write!(out, "{value:?}")
    }
}

/// A `fmt::Write` that passes text on with each control character as an escape (`\n`,
/// `\u{1b}`), in runs rather than a character at a time.
struct EscapingWriter<W>(W);

impl<W: fmt::Write> fmt::Write for EscapingWriter<W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some((at, c)) = rest.char_indices().find(|(_, c)| c.is_control()) {
            self.0.write_str(&rest[..at])?;
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        let mut out = String::new();
        EscapingWriter(&mut out)
            .write_str("web\nINFO forged\u{1b}[31mred\u{7f}\tok é")
            .unwrap();
        assert_eq!(out, "web\\nINFO forged\\u{1b}[31mred\\u{7f}\\tok é");
    }
}
