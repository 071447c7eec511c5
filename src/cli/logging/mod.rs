//! Log output. Request fields (names, namespaces, uids) come from whoever sent the request, so
//! no format may print them raw: a newline in a name would forge a log line, an escape sequence
//! would drive the reader's terminal. JSON escapes them by itself; the text format here escapes
//! every control character in every field and message.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::{self, IsTerminal};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kuma_identity_webhook::server::decision_log;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::FormatFields;

use super::LogFormat;
use decisions::{DecisionFormat, DecisionLines};

mod decisions;

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let out = Arc::new(StderrLines::new());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(Timestamp)
        .with_writer(Arc::clone(&out));
    // Colours only for a person at a terminal; collected logs get plain text.
    let ansi = std::io::stderr().is_terminal();
    let decisions = match format {
        LogFormat::Text => {
            builder.fmt_fields(EscapedFields).with_ansi(ansi).init();
            // Coloured lines are left to tracing-subscriber: a person reads them, not a collector.
            (!ansi).then_some(DecisionFormat::Text)
        }
        LogFormat::Json => {
            builder.json().init();
            Some(DecisionFormat::Json)
        }
    };
    if let Some(format) = decisions {
        decision_log::install(Box::new(DecisionLines { format, out }));
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

/// tracing-subscriber's own timestamp (UTC, microseconds: `2026-12-02T17:48:50.510671Z`), with
/// the date and time of day formatted once a second per thread instead of on every line, where
/// they were a fifth of the decision line's cost.
struct Timestamp;

thread_local! {
    /// The second last formatted on this thread, and its `2026-12-02T17:48:50`.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
}

impl FormatTime for Timestamp {
    fn format_time(&self, writer: &mut Writer<'_>) -> fmt::Result {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since_epoch) if write_timestamp(since_epoch, writer).is_some() => Ok(()),
            // Before 1970 or after 9999: tracing-subscriber knows those years' forms.
            _ => tracing_subscriber::fmt::time::SystemTime.format_time(writer),
        }
    }
}

/// Writes the timestamp `since_epoch` after 1970; `None` (with nothing written) for a year past
/// 9999 or a failed write.
fn write_timestamp(since_epoch: Duration, writer: &mut impl fmt::Write) -> Option<()> {
    let seconds = since_epoch.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != seconds || text.is_empty() {
            let at =
                time::OffsetDateTime::from_unix_timestamp(i64::try_from(seconds).ok()?).ok()?;
            if at.year() > 9999 {
                return None;
            }
            text.clear();
            let (month, day) = (u8::from(at.month()), at.day());
            let (hour, minute, second) = at.to_hms();
            write!(
                text,
                "{:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}",
                at.year()
            )
            .ok()?;
            *cached = seconds;
        }
        let mut fraction = *b".000000Z";
        let mut micros = since_epoch.subsec_micros();
        for digit in fraction[1..7].iter_mut().rev() {
            *digit = b'0' + (micros % 10) as u8;
            micros /= 10;
        }
        writer.write_str(text).ok()?;
        writer.write_str(std::str::from_utf8(&fraction).ok()?).ok()
    })
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

/// The plain kinds of value are written directly, exactly as their `Debug` form reads: the
/// decision line has ten fields, and going through `fmt` for each was a third of its cost.
impl Visit for Escaping<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, |out| write!(out, "{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, |out| write_recorded_str(out, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record(field, |out| write_bool(out, value));
    }
}

/// A string field as tracing-subscriber's text format writes it: in quotes, as its `Debug` form.
fn write_recorded_str(out: &mut impl fmt::Write, value: &str) -> fmt::Result {
    let quotable = value.bytes().fold(true, |quotable, byte| {
        quotable & is_plain_ascii(byte) & (byte != b'"') & (byte != b'\\')
    });
    if !quotable {
        // Quotes, backslashes, control and non-ASCII characters: `Debug` knows the escapes.
        return write!(out, "{value:?}");
    }
    out.write_char('"')?;
    out.write_str(value)?;
    out.write_char('"')
}

fn write_bool(out: &mut impl fmt::Write, value: bool) -> fmt::Result {
    out.write_str(if value { "true" } else { "false" })
}

impl Escaping<'_, '_> {
    /// Writes ` name=` (or nothing before the message) and then the value, through the escaping
    /// writer: no string per field.
    fn record(
        &mut self,
        field: &Field,
        value: impl FnOnce(&mut EscapingWriter<&mut Writer<'_>>) -> fmt::Result,
    ) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if !self.first {
                self.writer.write_char(' ')?;
            }
            self.first = false;
            let mut out = EscapingWriter(&mut *self.writer);
            if field.name() != "message" {
                out.write_str(field.name())?;
                out.0.write_char('=')?;
            }
            value(&mut out)
        })();
    }
}

/// Printable ASCII: what a log field may hold unescaped, and most of them do.
fn is_plain_ascii(byte: u8) -> bool {
    (b' '..=b'~').contains(&byte)
}

/// Whether all of `text` is printable ASCII. It looks at every byte rather than stopping at the
/// first other one, so the compiler checks 16 or 32 bytes an instruction; nearly every text
/// passes, and stopping early only saves work on the few that do not.
fn all_plain_ascii(text: &str) -> bool {
    text.bytes()
        .fold(true, |plain, byte| plain & is_plain_ascii(byte))
}

/// A `fmt::Write` that passes text on with each control character as an escape (`\n`,
/// `\u{1b}`), in runs rather than a character at a time.
struct EscapingWriter<W>(W);

impl<W: fmt::Write> fmt::Write for EscapingWriter<W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // Checking bytes is far cheaper than decoding characters, and nearly every text passes.
        if all_plain_ascii(text) {
            return self.0.write_str(text);
        }
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
pub(super) mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_tracing_subscribers() {
        // Expected values from Python's datetime.fromtimestamp(t, timezone.utc).
        for (since_epoch, want) in [
            (Duration::ZERO, "1970-01-01T00:00:00.000000Z"),
            (
                Duration::new(1_796_146_130, 510_671_999),
                "2026-12-01T17:28:50.510671Z",
            ),
            (
                Duration::new(1_796_146_131, 7_000),
                "2026-12-01T17:28:51.000007Z",
            ),
            (
                Duration::new(951_782_400, 999_999_000),
                "2000-02-29T00:00:00.999999Z",
            ),
            (
                Duration::new(253_402_300_799, 0),
                "9999-12-31T23:59:59.000000Z",
            ),
        ] {
            let mut out = String::new();
            write_timestamp(since_epoch, &mut out).unwrap();
            assert_eq!(out, want);
        }
        assert!(write_timestamp(Duration::new(253_402_300_800, 0), &mut String::new()).is_none());
    }

    /// Lines of events whose fields need no escaping read as tracing-subscriber's own text format
    /// writes them; `escaped` picks the field formatter.
    fn text_lines(escaped: bool) -> String {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&out);
        let make_writer = move || Sink(Arc::clone(&sink));
        let builder = tracing_subscriber::fmt()
            .without_time()
            .with_ansi(false)
            .with_writer(make_writer);
        let emit = || {
            for text in ["bench-1", "a'b", "a\"b", "back\\slash", "", "é", "~ !"] {
                tracing::info!(webhook = text, uid = %text, dry_run = false, took = 7u64, "decided");
            }
        };
        if escaped {
            tracing::subscriber::with_default(builder.fmt_fields(EscapedFields).finish(), emit);
        } else {
            tracing::subscriber::with_default(builder.finish(), emit);
        }
        let bytes = out.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// Collects what a subscriber writes.
    pub(super) struct Sink(pub(super) Arc<Mutex<Vec<u8>>>);

    impl io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn fields_read_as_tracing_subscribers_own() {
        let (ours, theirs) = (text_lines(true), text_lines(false));
        assert!(
            ours.contains(r#"webhook="a\"b" uid=a"b dry_run=false took=7"#),
            "{ours}"
        );
        assert_eq!(ours, theirs);
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = String::new();
        EscapingWriter(&mut out)
            .write_str("web\nINFO forged\u{1b}[31mred\u{7f}\tok é")
            .unwrap();
        assert_eq!(out, "web\\nINFO forged\\u{1b}[31mred\\u{7f}\\tok é");
    }
}
