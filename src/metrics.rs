//! Prometheus metrics, served as text on the admin listener's `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Latency buckets in seconds. kube-apiserver gives a webhook at most 30 s (we register 5 s or
/// less), so buckets end at 10 s; the low end resolves the sub-millisecond decisions.
const LATENCY_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The webhook path; only the registered paths are ever used, keeping cardinality bounded.
    pub path: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PathLabels {
    pub path: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// One of a fixed set of reasons named by the decision code.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CutLabels {
    /// `admission` (the TLS listener) or `admin`.
    pub listener: &'static str,
    /// Which deadline: `handshake`, `header`, `idle`, `body` or `write`.
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// One of a fixed set of outcomes named where the metric is recorded.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    /// One of the audit's fixed findings (`audit::Finding::ALL`).
    pub finding: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    /// One of the fixed background tasks (`watch-pods`, `publisher`, `certificate-reload`, ...).
    pub task: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<PathLabels, Histogram>,
    pub pod_denials: Family<ReasonLabels, Counter>,
    pub injections: Family<InjectionLabels, Counter>,
    pub tls_expiry: Gauge,
    pub tls_reloads: Counter,
    pub tls_reload_errors: Counter,
    pub store_objects: Family<ResourceLabels, Gauge>,
    pub sync_age: Family<ResourceLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub watch_restarts: Family<ResourceLabels, Counter>,
    pub decode_errors: Family<ResourceLabels, Counter>,
    pub snapshots_published: Counter,
    pub overloaded: Counter,
    pub deadline_cuts: Family<CutLabels, Counter>,
    pub tls_handshake_failures: Family<ReasonLabels, Counter>,
    pub client_ca_reloads: Counter,
    pub client_ca_reload_errors: Counter,
    pub drain_requests: Family<OutcomeLabels, Counter>,
    pub drain_connections: Family<OutcomeLabels, Counter>,
    pub task_restarts: Family<TaskLabels, Counter>,
    pub audit_findings: Family<FindingLabels, Gauge>,
    pub audit_last_run: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub audit_duration: Gauge<f64, std::sync::atomic::AtomicU64>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// One of the four watched resources' plural names.
    pub resource: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InjectionLabels {
    /// `injected`, `skipped` or `denied`.
    pub outcome: &'static str,
    /// `injected`, a skip reason, or why the pod was denied.
    pub reason: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kuma_identity_webhook");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission requests by webhook path and outcome (allowed, denied, error)",
            requests.clone(),
        );
        let latency = Family::<PathLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(LATENCY_BUCKETS)
        });
        registry.register(
            "admission_duration_seconds",
            "Time from the end of an admission request's head to its decision, body read included",
            latency.clone(),
        );
        let pod_denials = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "pod_denials",
            "Pods refused by the pod validating webhook, by reason",
            pod_denials.clone(),
        );
        let injections = Family::<InjectionLabels, Counter>::default();
        registry.register(
            "spire_socket_injections",
            "SPIRE agent socket injection decisions by outcome and reason",
            injections.clone(),
        );
        let tls_expiry = Gauge::default();
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "When the serving certificate in use expires (Unix seconds)",
            tls_expiry.clone(),
        );
        let tls_reloads = Counter::default();
        registry.register(
            "tls_certificate_reloads",
            "Serving certificate pairs loaded after start-up",
            tls_reloads.clone(),
        );
        let tls_reload_errors = Counter::default();
        registry.register(
            "tls_certificate_reload_errors",
            "Changed certificate files that did not load (the last good pair stays in use)",
            tls_reload_errors.clone(),
        );
        let store_objects = Family::<ResourceLabels, Gauge>::default();
        registry.register(
            "store_objects",
            "Objects held per watched resource",
            store_objects.clone(),
        );
        let sync_age =
            Family::<ResourceLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "store_last_sync_age_seconds",
            "Seconds since each resource's watch last made progress (a list, an event, a stream kept open); the oldest of its watches",
            sync_age.clone(),
        );
        let watch_restarts = Family::<ResourceLabels, Counter>::default();
        registry.register(
            "watch_restarts",
            "Watch errors after which the watch backed off and resumed",
            watch_restarts.clone(),
        );
        let decode_errors = Family::<ResourceLabels, Counter>::default();
        registry.register(
            "watch_decode_errors",
            "Watched objects that did not decode and were left out of the cluster state",
            decode_errors.clone(),
        );
        let snapshots_published = Counter::default();
        registry.register(
            "snapshots_published",
            "Cluster state snapshots published to the decision layer",
            snapshots_published.clone(),
        );
        let overloaded = Counter::default();
        registry.register(
            "admission_overloaded",
            "Admission requests refused with 503 because their memory did not fit in time",
            overloaded.clone(),
        );
        let deadline_cuts = Family::<CutLabels, Counter>::default();
        registry.register(
            "connection_deadline_cuts",
            "Connections cut off or requests refused by a deadline, by listener and kind (handshake, header, idle, body, write)",
            deadline_cuts.clone(),
        );
        let tls_handshake_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed (timeouts are counted as handshake deadline cuts), by reason: client_certificate, protocol, io",
            tls_handshake_failures.clone(),
        );
        let client_ca_reloads = Counter::default();
        registry.register(
            "client_ca_reloads",
            "Client CA bundles loaded after start-up (--client-ca)",
            client_ca_reloads.clone(),
        );
        let client_ca_reload_errors = Counter::default();
        registry.register(
            "client_ca_reload_errors",
            "Changed client CA files that did not load (the last good bundle stays in use)",
            client_ca_reload_errors.clone(),
        );
        let drain_requests = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "drain_requests",
            "Requests seen after shutdown began: answered, or abandoned when the grace period ran out",
            drain_requests.clone(),
        );
        let drain_connections = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "drain_connections",
            "Connections ended by shutdown: closed gracefully, or forced when the grace period ran out",
            drain_connections.clone(),
        );
        let task_restarts = Family::<TaskLabels, Counter>::default();
        registry.register(
            "task_restarts",
            "Background tasks that ended (returned or panicked) and were restarted",
            task_restarts.clone(),
        );
        let audit_findings = Family::<FindingLabels, Gauge>::default();
        registry.register(
            "audit_findings",
            "Pods with each audit finding in the last audit of the live cluster state",
            audit_findings.clone(),
        );
        let audit_last_run = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "audit_last_run_timestamp_seconds",
            "When the last audit of the live cluster state finished (Unix seconds)",
            audit_last_run.clone(),
        );
        let audit_duration = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "audit_duration_seconds",
            "How long the last audit of the live cluster state took",
            audit_duration.clone(),
        );
        Self {
            registry,
            audit_findings,
            audit_last_run,
            audit_duration,
            overloaded,
            requests,
            latency,
            pod_denials,
            injections,
            tls_expiry,
            tls_reloads,
            tls_reload_errors,
            store_objects,
            sync_age,
            watch_restarts,
            decode_errors,
            snapshots_published,
            deadline_cuts,
            tls_handshake_failures,
            client_ca_reloads,
            client_ca_reload_errors,
            drain_requests,
            drain_connections,
            task_restarts,
        }
    }

    pub fn deadline_cut(&self, listener: &'static str, kind: &'static str) {
        self.deadline_cuts
            .get_or_create(&CutLabels { listener, kind })
            .inc();
    }

    pub fn tls_handshake_failed(&self, reason: &'static str) {
        self.tls_handshake_failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn drained_requests(&self, outcome: &'static str, count: u64) {
        self.drain_requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc_by(count);
    }

    pub fn drained_connections(&self, outcome: &'static str, count: u64) {
        self.drain_connections
            .get_or_create(&OutcomeLabels { outcome })
            .inc_by(count);
    }

    pub fn task_restarted(&self, task: &'static str) {
        self.task_restarts.get_or_create(&TaskLabels { task }).inc();
    }

    pub fn pod_denied(&self, reason: &'static str) {
        self.pod_denials
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn injection(&self, outcome: &'static str, reason: &'static str) {
        self.injections
            .get_or_create(&InjectionLabels { outcome, reason })
            .inc();
    }

    pub fn watch_restart(&self, resource: &'static str) {
        self.watch_restarts
            .get_or_create(&ResourceLabels { resource })
            .inc();
    }

    pub fn decode_error(&self, resource: &'static str) {
        self.decode_errors
            .get_or_create(&ResourceLabels { resource })
            .inc();
    }

    pub fn set_store_objects(&self, resource: &'static str, count: usize) {
        self.store_objects
            .get_or_create(&ResourceLabels { resource })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub fn set_sync_age(&self, resource: &'static str, seconds: f64) {
        self.sync_age
            .get_or_create(&ResourceLabels { resource })
            .set(seconds);
    }

    pub fn set_audit_findings(&self, finding: &'static str, count: usize) {
        self.audit_findings
            .get_or_create(&FindingLabels { finding })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub fn audit_ran(&self, finished_unix_seconds: f64, took_seconds: f64) {
        self.audit_last_run.set(finished_unix_seconds);
        self.audit_duration.set(took_seconds);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}
