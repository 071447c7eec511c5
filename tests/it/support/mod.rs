//! Shared test support: an in-process server on a loopback port with fresh certificates, clients
//! that verify the chain and the DNS name, and the admission fixture format.
#![allow(dead_code)]

pub mod binary;
pub mod cli;
pub mod fake_apiserver;
pub mod go_oracle;
pub mod inject_fixture;
pub mod kustomize;
pub mod raw;
pub mod rbac;
pub mod review;
pub mod rng;
pub mod scale;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use kuma_identity_webhook::cluster::{Snapshot, StateHandle};
use kuma_identity_webhook::config::{Enforcement, KumaVersion, Settings, WorkloadFallback};
use kuma_identity_webhook::metrics::Metrics;
use kuma_identity_webhook::server::drain::Drain;
use kuma_identity_webhook::server::timeouts::Deadlines;
use kuma_identity_webhook::server::tls::certs;
use kuma_identity_webhook::server::tls::store::CertStore;
use kuma_identity_webhook::server::{self, routes, Listener, ServeContext};
use rustls::server::danger::ClientCertVerifier;

/// The server's default memory for requests in flight (`serve --max-inflight-bytes`).
pub const DEFAULT_MAX_INFLIGHT_BYTES: usize = 64 << 20;

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The example cluster state shipped for the quickstart; the base of every fixture.
pub fn example_state() -> Snapshot {
    kuma_identity_webhook::cluster::file::load(&repo_path("deploy/examples/cluster-state.yaml"))
        .unwrap()
}

/// Adds an object, given as JSON, to a snapshot (kinds decisions do not read are ignored).
pub fn insert_json(snapshot: &mut Snapshot, object: Value) {
    if let Some(object) = kuma_identity_webhook::cluster::Object::from_json(object).unwrap() {
        snapshot.insert(object);
    }
}

pub struct TestServer {
    /// The TLS admission listener.
    pub addr: SocketAddr,
    /// The plain-HTTP admin listener.
    pub admin_addr: SocketAddr,
    pub ca_pem: String,
    pub state: Arc<StateHandle>,
    pub metrics: Arc<Metrics>,
    pub drain: Arc<Drain>,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// How a [`TestServer`] differs from the defaults.
#[derive(Default)]
pub struct ServerOptions {
    /// Connection deadlines; the production ones when `None`.
    pub deadlines: Option<Deadlines>,
    /// Client-certificate verification on the TLS listener.
    pub client_auth: Option<Arc<dyn ClientCertVerifier>>,
}

impl TestServer {
    /// Starts the real TLS server on 127.0.0.1 with a fresh CA; `state` may be `None` to test
    /// the not-ready path.
    pub async fn start(state: Option<Snapshot>, settings: Settings) -> Self {
        Self::start_with(state, settings, ServerOptions::default()).await
    }

    /// [`TestServer::start`] with `options`.
    pub async fn start_with(
        state: Option<Snapshot>,
        settings: Settings,
        options: ServerOptions,
    ) -> Self {
        let handle = Arc::new(StateHandle::default());
        if let Some(state) = state {
            handle.set(Arc::new(state));
        }
        Self::launch(handle, settings, options).await
    }

    /// Starts the server on a state handle someone else feeds (the live watches, say).
    pub async fn start_shared(handle: Arc<StateHandle>, settings: Settings) -> Self {
        Self::launch(handle, settings, ServerOptions::default()).await
    }

    /// Both listeners, as `serve` runs them, with their own drain.
    async fn launch(handle: Arc<StateHandle>, settings: Settings, options: ServerOptions) -> Self {
        let pair = certs::generate(&certs::serving_names(
            "kuma-identity-webhook",
            "kuma-system",
        ))
        .unwrap();
        let dir = tempdir();
        std::fs::write(dir.join("tls.crt"), &pair.cert_pem).unwrap();
        std::fs::write(dir.join("tls.key"), &pair.key_pem).unwrap();
        let store = CertStore::load(&dir.join("tls.crt"), &dir.join("tls.key")).unwrap();
        let tls = server::tls::server_config(Arc::new(store), options.client_auth).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let metrics = Arc::new(Metrics::new());
        let app = routes::App::new(
            handle.clone(),
            settings,
            metrics.clone(),
            DEFAULT_MAX_INFLIGHT_BYTES,
        );
        let drain = Drain::new();
        let context = |listener| ServeContext {
            deadlines: options.deadlines.unwrap_or_default(),
            ..ServeContext::new(listener, drain.clone(), metrics.clone())
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (addr, admin_addr) = (listener.local_addr().unwrap(), admin.local_addr().unwrap());
        let tasks = vec![
            tokio::spawn(server::serve_tls(
                listener,
                tls,
                routes::admission_router(app.clone()),
                context(Listener::Admission),
            )),
            tokio::spawn(server::serve_admin(
                admin,
                routes::admin_router(app),
                context(Listener::Admin),
            )),
        ];
        Self {
            addr,
            admin_addr,
            ca_pem: pair.ca_cert_pem,
            state: handle,
            metrics,
            drain,
            tasks,
        }
    }

    /// A client that trusts only this server's CA and checks the name `localhost`.
    pub fn client(&self, http2: bool) -> reqwest::Client {
        verifying_client(self.ca_pem.as_bytes(), self.addr, http2)
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// A TLS connection to the admission listener offering only `alpn`, driven byte by byte.
    pub async fn tls(&self, alpn: &[u8]) -> raw::Tls {
        raw::tls_connect(self.addr, self.ca_pem.as_bytes(), alpn).await
    }

    /// POSTs an AdmissionReview and returns the HTTP status and JSON body.
    pub async fn post(&self, client: &reqwest::Client, path: &str, body: Vec<u8>) -> (u16, Value) {
        let response = client
            .post(self.url(&format!("{path}?timeout=10s")))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }
}

/// Reads one HTTP/1.1 response (head, then `content-length` bytes of body); `None` if the
/// connection closes first.
pub async fn read_http1_response<R: tokio::io::AsyncRead + Unpin>(
    stream: &mut R,
) -> Option<String> {
    let mut got = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return Some(text);
            }
        }
        let mut buf = [0u8; 4096];
        match tokio::io::AsyncReadExt::read(stream, &mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// [`read_http1_response`] within 5 s; fails the test, saying `what`, if the connection closes
/// or nothing complete arrives in time.
pub async fn expect_http1_response<R: tokio::io::AsyncRead + Unpin>(
    stream: &mut R,
    what: &str,
) -> String {
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        read_http1_response(stream),
    );
    read.await
        .unwrap_or_else(|_| panic!("{what}: no response within 5 s"))
        .unwrap_or_else(|| panic!("{what}: closed before a response"))
}

/// The string items of a JSON array (a manifest's `verbs`, `resources`, ...).
pub fn json_strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// A client that trusts only `ca_pem`, checks the name `localhost` (resolved to `addr`), and
/// speaks HTTP/2 or HTTP/1.1 only.
pub fn verifying_client(ca_pem: &[u8], addr: SocketAddr, http2: bool) -> reqwest::Client {
    verifying_client_builder(ca_pem, addr, http2)
        .build()
        .unwrap()
}

/// The builder of [`verifying_client`], for clients that need more (a client certificate, no
/// connection reuse).
pub fn verifying_client_builder(
    ca_pem: &[u8],
    addr: SocketAddr,
    http2: bool,
) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
        .resolve("localhost", addr)
        .use_rustls_tls();
    if http2 {
        builder.http2_prior_knowledge()
    } else {
        builder.http1_only()
    }
}

/// The path of the MeshIdentity validating webhook.
pub const MESHIDENTITY_PATH: &str = "/validate-kuma-io-v1alpha1-meshidentity";

/// A CREATE AdmissionReview (uid `u-1`) of `object` as a MeshIdentity in `kuma-system`.
pub fn meshidentity_review(object: Value) -> Value {
    review::Review::meshidentity(object).json()
}

pub fn tempdir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kiw-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---- fixtures -------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct FixtureFile {
    pub webhook: String,
    pub cases: Vec<Case>,
}

#[derive(Deserialize)]
pub struct Case {
    pub name: String,
    #[serde(default)]
    pub settings: FixtureSettings,
    /// Objects added to the example cluster state for this case.
    #[serde(default)]
    pub state: Vec<Value>,
    pub request: FixtureRequest,
    pub expect: Expect,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FixtureSettings {
    #[serde(default)]
    pub workload_labels: Vec<String>,
    pub enforcement: Option<String>,
    pub workload_fallback: Option<String>,
    pub spire_enabled: Option<bool>,
    /// `--kuma-version`: `"2"` (the default) or `"3"`.
    pub kuma_version: Option<String>,
}

impl FixtureSettings {
    pub fn settings(&self) -> Settings {
        let mut settings = Settings {
            workload_labels: self.workload_labels.clone(),
            ..Settings::default()
        };
        if self.enforcement.as_deref() == Some("warn") {
            settings.enforcement = Enforcement::Warn;
        }
        if self.workload_fallback.as_deref() == Some("service-account") {
            settings.workload_fallback = WorkloadFallback::ServiceAccount;
        }
        if self.kuma_version.as_deref() == Some("3") {
            settings.kuma_version = KumaVersion::V3;
        }
        if let Some(enabled) = self.spire_enabled {
            settings.inject.enabled_by_default = enabled;
        }
        settings
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FixtureRequest {
    pub operation: String,
    pub namespace: Option<String>,
    pub username: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    pub object: Option<Value>,
    pub old_object: Option<Value>,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn all(&self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub allowed: bool,
    pub code: Option<u16>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub message_contains: Option<OneOrMany>,
    pub causes: Option<Vec<ExpectCause>>,
    pub warnings: Option<Vec<String>>,
    pub warnings_contain: Option<OneOrMany>,
    /// Audit annotations that must be present with these values; `{}` means none at all.
    pub audit: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectCause {
    pub field: String,
    pub message: Option<String>,
    pub message_contains: Option<OneOrMany>,
}

pub fn load_fixtures(relative: &str) -> FixtureFile {
    let text = std::fs::read_to_string(repo_path(relative)).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

impl Case {
    /// The case's cluster: the example state plus its own objects.
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = example_state();
        for object in &self.state {
            insert_json(&mut snapshot, object.clone());
        }
        snapshot
    }

    /// A full AdmissionReview v1 as kube-apiserver sends it.
    pub fn review(&self, uid: &str) -> Value {
        let object = self
            .request
            .object
            .clone()
            .or_else(|| self.request.old_object.clone())
            .unwrap_or(Value::Null);
        let namespace = self.request.namespace.clone().or_else(|| {
            object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        review::Review::create(object)
            .uid(uid)
            .operation(self.request.operation.clone())
            .namespace(namespace)
            .username(
                self.request
                    .username
                    .clone()
                    .unwrap_or_else(|| "kubernetes-admin".to_owned()),
            )
            .object(self.request.object.clone())
            .old_object(self.request.old_object.clone())
            .dry_run(self.request.dry_run)
            .json()
    }
}

fn contains_all(haystack: &str, needles: &Option<OneOrMany>) -> Result<(), String> {
    for needle in needles.iter().flat_map(OneOrMany::all) {
        if !haystack.contains(&needle) {
            return Err(format!("expected {haystack:?} to contain {needle:?}"));
        }
    }
    Ok(())
}

impl Expect {
    /// Checks an AdmissionReview response body; returns every mismatch.
    pub fn check(&self, uid: &str, body: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        let mut fail = |e: String| errors.push(e);
        if body["apiVersion"] != "admission.k8s.io/v1" || body["kind"] != "AdmissionReview" {
            fail(format!("envelope not echoed: {body}"));
        }
        let response = &body["response"];
        if response["uid"] != uid {
            fail(format!("uid not echoed: {}", response["uid"]));
        }
        if response["allowed"] != self.allowed {
            fail(format!("allowed: want {}, got {}", self.allowed, response));
        }
        let status = &response["status"];
        let message = status["message"].as_str().unwrap_or_default();
        if let Some(code) = self.code {
            if status["code"] != code {
                fail(format!("code: want {code}, got {}", status["code"]));
            }
        }
        if let Some(reason) = &self.reason {
            if status["reason"] != reason.as_str() {
                fail(format!("reason: want {reason}, got {}", status["reason"]));
            }
        }
        if let Some(want) = &self.message {
            if message != want {
                fail(format!("message: want {want:?}, got {message:?}"));
            }
        }
        if let Err(e) = contains_all(message, &self.message_contains) {
            fail(e);
        }
        if let Some(causes) = &self.causes {
            let got = status
                .pointer("/details/causes")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if got.len() != causes.len() {
                fail(format!(
                    "causes: want {}, got {}: {got:?}",
                    causes.len(),
                    got.len()
                ));
            }
            for want in causes {
                let found = got.iter().any(|cause| {
                    let msg = cause["message"].as_str().unwrap_or_default();
                    cause["field"] == want.field.as_str()
                        && cause["reason"] == "FieldValueInvalid"
                        && want.message.as_ref().is_none_or(|m| m == msg)
                        && contains_all(msg, &want.message_contains).is_ok()
                });
                if !found {
                    fail(format!(
                        "no cause at {} matching {:?}/{:?} in {got:?}",
                        want.field,
                        want.message,
                        want.message_contains.as_ref().map(OneOrMany::all)
                    ));
                }
            }
        }
        let warnings: Vec<String> = response["warnings"]
            .as_array()
            .map(|w| {
                w.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(want) = &self.warnings {
            if &warnings != want {
                fail(format!("warnings: want {want:?}, got {warnings:?}"));
            }
        }
        for needle in self.warnings_contain.iter().flat_map(OneOrMany::all) {
            if !warnings.iter().any(|w| w.contains(&needle)) {
                fail(format!("no warning contains {needle:?}: {warnings:?}"));
            }
        }
        if let Some(audit) = &self.audit {
            let got = response["auditAnnotations"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            if audit.is_empty() && !got.is_empty() {
                fail(format!("audit annotations: want none, got {got:?}"));
            }
            for (key, value) in audit {
                if got.get(key) != Some(value) {
                    fail(format!(
                        "audit annotation {key}: want {value}, got {:?}",
                        got.get(key)
                    ));
                }
            }
        }
        if warnings.iter().any(|w| w.chars().count() > 120) {
            fail(format!("warning over 120 characters: {warnings:?}"));
        }
        errors
    }
}

/// The value of one series (`name{labels}`) in a Prometheus text exposition.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
