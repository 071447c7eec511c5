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

use tracing::{metadata::Kind, Level};

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
    log_to(SINK.get().map(|sink| &**sink), line);
}

fn log_to(sink: Option<&dyn DecisionSink>, line: &DecisionLine<'_>) {
    // The filter is asked about an event with the line's field names, not a bare target: a
    // directive that names fields (`...routes[{outcome}]=off`) applies only to callsites that
    // have them, and must filter the line written by a sink as it filters the tracing event.
    let enabled = tracing::enabled!(
        kind: Kind::EVENT,
        target: TARGET,
        Level::INFO,
        message,
        webhook,
        uid,
        kind,
        namespace,
        name,
        operation,
        dry_run,
        outcome,
        allowed,
        duration_us
    );
    if !enabled {
        return;
    }
    match sink {
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

#[cfg(test)]
mod tests {
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };

    use tracing_subscriber::{layer::Context, layer::SubscriberExt, EnvFilter, Layer, Registry};

    use super::*;

    /// Counts what it is given: lines as a sink, events as a layer behind the filter.
    #[derive(Clone, Default)]
    struct Counting(Arc<AtomicUsize>);

    impl Counting {
        fn count(&self) -> usize {
            self.0.load(Ordering::Relaxed)
        }
    }

    impl DecisionSink for Counting {
        fn write(&self, _: &DecisionLine<'_>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl<S: tracing::Subscriber> Layer<S> for Counting {
        fn on_event(&self, _: &tracing::Event<'_>, _: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn written_line() -> DecisionLine<'static> {
        DecisionLine {
            webhook: "/mutate-v1-pod",
            uid: "uid",
            kind: "Pod",
            namespace: "default",
            name: "web",
            operation: "CREATE",
            dry_run: false,
            outcome: "allowed",
            allowed: true,
            duration_us: 7,
        }
    }

    /// Under the `RUST_LOG` directives `filter`: how many lines a sink writes, and how many
    /// events tracing lets through when the line is logged as a tracing event.
    fn written_under(filter: &str) -> (usize, usize) {
        let line = written_line();
        let (sink, events) = (Counting::default(), Counting::default());
        let subscriber = Registry::default()
            .with(EnvFilter::new(filter))
            .with(events.clone());
        tracing::subscriber::with_default(subscriber, || {
            log_to(Some(&sink), &line);
            log_through_tracing(&line);
        });
        (sink.count(), events.count())
    }

    #[test]
    fn a_sink_writes_the_line_exactly_when_the_filter_lets_the_event_through() {
        let mut filters = vec![
            ("info".to_string(), 1),
            ("warn".to_string(), 0),
            (format!("info,{TARGET}=off"), 0),
            (format!("info,{TARGET}[{{no_such_field}}]=off"), 1),
            (format!("off,{TARGET}[{{uid}}]=info"), 1),
        ];
        // A directive naming any one of the line's fields turns it off: the filter is asked
        // about every field the event has, so a field added to one and not the other fails here.
        let line = written_line();
        let names = std::iter::once("message").chain(line.fields().map(|(name, _)| name));
        filters.extend(names.map(|name| (format!("info,{TARGET}[{{{name}}}]=off"), 0)));
        for (filter, expected) in filters {
            assert_eq!(written_under(&filter), (expected, expected), "{filter}");
        }
    }
}
