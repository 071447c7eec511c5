//! The one log line every admission decision gets.
//!
//! It is the one line the server writes per request, so its cost is paid at the server's full
//! rate: through tracing-subscriber's formatter it took about 7 400 instructions, 6 % of a
//! MeshIdentity request (callgrind over the whole server), most of them walking the ten fields
//! through `fmt` one `dyn` call at a time. The binary therefore installs a [`DecisionSink`] that
//! writes the same bytes directly; its tests hold each format it writes to tracing-subscriber's
//! own, through [`log_through_tracing`]. Without a sink (the library embedded, tests, a terminal
//! that gets colours) the line goes through tracing as before.

use std::sync::OnceLock;

use tracing::Level;

/// The target the line is logged under, as `RUST_LOG` directives name it; it is where the line
/// was first logged from, and filters already written for it must keep working.
pub const TARGET: &str = "kuma_identity_webhook::server::routes";

/// The line's message.
pub const MESSAGE: &str = "admission decision";

/// One decision, as logged.
#[derive(Debug, Clone, Copy)]
pub struct DecisionLine<'a> {
    pub webhook: &'static str,
    pub uid: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub operation: &'a str,
    pub dry_run: bool,
    pub outcome: &'static str,
    pub allowed: bool,
    pub duration_us: u64,
}

/// A field's value, in the form tracing records it: how a format writes it depends on that
/// form (text quotes a recorded string but not a displayed one; JSON writes both as strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValue<'a> {
    /// Recorded as a string (`field = value`).
    Str(&'a str),
    /// Recorded through `Display` (`field = %value`).
    Display(&'a str),
    Bool(bool),
    U64(u64),
}

impl<'a> DecisionLine<'a> {
    /// The fields after the message, in the order tracing records them.
    pub fn fields(&self) -> [(&'static str, FieldValue<'a>); 10] {
        use FieldValue::{Bool, Display, Str, U64};
        [
            ("webhook", Str(self.webhook)),
            ("uid", Display(self.uid)),
            ("kind", Display(self.kind)),
            ("namespace", Display(self.namespace)),
            ("name", Display(self.name)),
            ("operation", Display(self.operation)),
            ("dry_run", Bool(self.dry_run)),
            ("outcome", Str(self.outcome)),
            ("allowed", Bool(self.allowed)),
            ("duration_us", U64(self.duration_us)),
        ]
    }
}

/// Writes decision lines exactly as the installed tracing subscriber would.
pub trait DecisionSink: Send + Sync {
    fn write(&self, line: &DecisionLine<'_>);
}

static SINK: OnceLock<Box<dyn DecisionSink>> = OnceLock::new();

/// Installs the process's sink; the first one stays. Whoever installs it also installed the
/// global subscriber whose format the sink writes.
pub fn install(sink: Box<dyn DecisionSink>) {
    // A second install (a test that sets logging up twice) keeps the first: both write alike.
    let _ = SINK.set(sink);
}

/// Logs `line` at INFO under [`TARGET`], if the log filter lets that through.
pub fn log(line: &DecisionLine<'_>) {
    if !tracing::enabled!(target: TARGET, Level::INFO) {
        return;
    }
    match SINK.get() {
        Some(sink) => sink.write(line),
        None => log_through_tracing(line),
    }
}

/// Logs `line` through tracing, whatever sink is installed: the path without a sink, and what
/// sinks are tested against.
pub fn log_through_tracing(line: &DecisionLine<'_>) {
    tracing::info!(
        target: TARGET,
        webhook = line.webhook,
        uid = %line.uid,
        kind = %line.kind,
        namespace = %line.namespace,
        name = %line.name,
        operation = %line.operation,
        dry_run = line.dry_run,
        outcome = line.outcome,
        allowed = line.allowed,
        duration_us = line.duration_us,
        "admission decision"
    );
}
