//! Decision lines written directly, in the format the installed subscriber would write them
//! (see [`decision_log`] for why), and the tests that hold the two to each other.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::Arc;

use kuma_identity_webhook::server::decision_log::{self, DecisionLine, DecisionSink, FieldValue};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

use super::{write_bool, write_recorded_str, EscapingWriter, StderrLines, Timestamp};

/// The formats decision lines are written in directly.
#[derive(Debug, Clone, Copy)]
pub(super) enum DecisionFormat {
    /// tracing-subscriber's full text format without colours, fields as [`EscapedFields`] writes
    /// them.
    Text,
    /// tracing-subscriber's JSON format.
    Json,
}

/// Writes decision lines as the subscriber `init_logging` installs would, without its per-field
/// dispatch (see [`decision_log`]), to the same standard error.
pub(super) struct DecisionLines {
    pub(super) format: DecisionFormat,
    pub(super) out: Arc<StderrLines>,
}

thread_local! {
    /// The decision line being written on this thread.
    static DECISION_LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A line buffer kept for the next line unless it grew past this: request fields are bounded
/// only by the body limit, and one huge line must not pin its memory on a worker for good.
const KEPT_LINE_CAPACITY: usize = 16 * 1024;

impl DecisionSink for DecisionLines {
    fn write(&self, line: &DecisionLine<'_>) {
        DECISION_LINE.with_borrow_mut(|buffer| {
            buffer.clear();
            let timestamp = |out: &mut ByteWriter<'_>| Timestamp.format_time(&mut Writer::new(out));
            if format_decision(self.format, buffer, timestamp, line).is_ok() {
                // A line that cannot be written (stderr closed or full) is dropped: the
                // decision stands either way, and there is nowhere else to report it.
                let _ = (&*self.out).write_all(buffer);
            }
            if buffer.capacity() > KEPT_LINE_CAPACITY {
                *buffer = Vec::new();
            }
        });
    }
}

/// Formats `line` into `out`, with the timestamp `timestamp` writes.
fn format_decision(
    format: DecisionFormat,
    out: &mut Vec<u8>,
    timestamp: impl FnOnce(&mut ByteWriter<'_>) -> fmt::Result,
    line: &DecisionLine<'_>,
) -> fmt::Result {
    match format {
        DecisionFormat::Text => decision_text(&mut ByteWriter(out), timestamp, line),
        DecisionFormat::Json => decision_json(out, timestamp, line),
    }
}

/// `2026-12-02T17:48:50.510671Z  INFO target: admission decision webhook="/…" uid=… …`
fn decision_text(
    out: &mut ByteWriter<'_>,
    timestamp: impl FnOnce(&mut ByteWriter<'_>) -> fmt::Result,
    line: &DecisionLine<'_>,
) -> fmt::Result {
    timestamp(out)?;
    // A space after the timestamp, the level right-aligned in five, a space.
    out.write_str("  INFO ")?;
    out.write_str(decision_log::TARGET)?;
    out.write_str(": ")?;
    // The message and the field names are plain text of ours; only values need escaping.
    out.write_str(decision_log::MESSAGE)?;
    let mut out = EscapingWriter(out);
    for (name, value) in line.fields() {
        out.0.write_char(' ')?;
        out.0.write_str(name)?;
        out.0.write_char('=')?;
        match value {
            FieldValue::Str(text) => write_recorded_str(&mut out, text)?,
            FieldValue::Display(text) => out.write_str(text)?,
            FieldValue::Bool(value) => write_bool(&mut out, value)?,
            FieldValue::U64(value) => write!(out, "{value}")?,
        }
    }
    out.0.write_char('\n')
}

/// `{"timestamp":"…","level":"INFO","fields":{"message":"admission decision",…},"target":"…"}`
fn decision_json(
    out: &mut Vec<u8>,
    timestamp: impl FnOnce(&mut ByteWriter<'_>) -> fmt::Result,
    line: &DecisionLine<'_>,
) -> fmt::Result {
    // Strings are escaped by serde_json, as tracing-subscriber's JSON format has them escaped.
    let string = |out: &mut Vec<u8>, text: &str| {
        serde_json::to_writer(&mut *out, text).map_err(|_| fmt::Error)
    };
    out.extend_from_slice(br#"{"timestamp":""#);
    // The timestamp is digits, dashes, colons and letters: nothing JSON escapes.
    timestamp(&mut ByteWriter(out))?;
    out.extend_from_slice(br#"","level":"INFO","fields":{"message":"#);
    string(out, decision_log::MESSAGE)?;
    for (name, value) in line.fields() {
        out.push(b',');
        string(out, name)?;
        out.push(b':');
        match value {
            FieldValue::Str(text) | FieldValue::Display(text) => string(out, text)?,
            FieldValue::Bool(value) => write_bool(&mut ByteWriter(out), value)?,
            FieldValue::U64(value) => write!(ByteWriter(out), "{value}")?,
        }
    }
    out.extend_from_slice(br#"},"target":"#);
    string(out, decision_log::TARGET)?;
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// Text into a byte buffer.
struct ByteWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::cli::logging::{tests::Sink, EscapedFields};

    /// Decision lines whose fields hold what a requester may send: quotes, backslashes, control
    /// characters, forged lines, non-ASCII, nothing at all.
    fn hostile_decisions() -> Vec<DecisionLine<'static>> {
        let plain = DecisionLine {
            webhook: "/validate-kuma-io-v1alpha1-meshidentity",
            uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
            kind: "MeshIdentity",
            namespace: "kuma-system",
            name: "web",
            operation: "CREATE",
            dry_run: false,
            outcome: "allowed",
            allowed: true,
            duration_us: 142,
        };
        vec![
            plain,
            DecisionLine {
                uid: "uid\r\n",
                name: "web\nINFO forged line\u{1b}[31m",
                namespace: "é ü \u{7f}\u{85}",
                kind: "a\"b\\c 'd'",
                dry_run: true,
                allowed: false,
                duration_us: u64::MAX,
                ..plain
            },
            DecisionLine {
                webhook: "/quote\"and\\back\tslash",
                outcome: "é\u{0}",
                uid: "",
                kind: "",
                namespace: "",
                name: "",
                operation: "",
                duration_us: 0,
                ..plain
            },
        ]
    }

    const AT: &str = "2026-12-03T09:29:10.084193Z";

    struct FixedTime;

    impl FormatTime for FixedTime {
        fn format_time(&self, writer: &mut Writer<'_>) -> fmt::Result {
            writer.write_str(AT)
        }
    }

    /// The decision lines as tracing-subscriber writes them in `format`, set up as
    /// [`init_logging`] sets it up.
    fn decisions_through_tracing(format: DecisionFormat) -> String {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&out);
        let builder = tracing_subscriber::fmt()
            .with_timer(FixedTime)
            .with_ansi(false)
            .with_writer(move || Sink(Arc::clone(&sink)));
        let emit = || {
            for line in hostile_decisions() {
                decision_log::log_through_tracing(&line);
            }
        };
        match format {
            DecisionFormat::Text => {
                let subscriber = builder.fmt_fields(EscapedFields).finish();
                tracing::subscriber::with_default(subscriber, emit);
            }
            DecisionFormat::Json => {
                tracing::subscriber::with_default(builder.json().finish(), emit)
            }
        }
        let bytes = out.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    fn decisions_written_directly(format: DecisionFormat) -> String {
        let mut all = Vec::new();
        for line in hostile_decisions() {
            let mut buffer = Vec::new();
            format_decision(format, &mut buffer, |out| out.write_str(AT), &line).unwrap();
            all.extend(buffer);
        }
        String::from_utf8(all).unwrap()
    }

    #[test]
    fn decision_lines_read_as_tracing_subscribers_own() {
        for format in [DecisionFormat::Text, DecisionFormat::Json] {
            let (ours, theirs) = (
                decisions_written_directly(format),
                decisions_through_tracing(format),
            );
            assert_eq!(ours.lines().count(), 3, "{ours}");
            assert_eq!(ours, theirs, "{format:?}");
        }
        let text = decisions_written_directly(DecisionFormat::Text);
        assert!(text.starts_with(&format!("{AT}  INFO {}: admission decision webhook=\"/validate-kuma-io-v1alpha1-meshidentity\" uid=705ab4f5-6393-11e8-b7cc-42010a800002 kind=MeshIdentity", decision_log::TARGET)), "{text}");
        assert!(
            text.contains(r"name=web\nINFO forged line\u{1b}[31m"),
            "{text}"
        );
        for line in decisions_written_directly(DecisionFormat::Json).lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["fields"]["message"], "admission decision", "{line}");
        }
    }
}
