//! `serve`: the HTTPS admission server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use kuma_identity_webhook::audit;
use kuma_identity_webhook::cluster::watch;
use kuma_identity_webhook::cluster::{file, StateHandle};
use kuma_identity_webhook::metrics::Metrics;
use kuma_identity_webhook::server::drain::Drain;
use kuma_identity_webhook::server::tls::certs;
use kuma_identity_webhook::server::tls::client_auth::ClientCa;
use kuma_identity_webhook::server::tls::store::CertStore;
use kuma_identity_webhook::server::{self, routes, tls, Listener, ServeContext};
use kuma_identity_webhook::supervise;
use kuma_identity_webhook::validate::duration::parse_flag_duration;

use super::logging::init_logging;
use super::{DecisionArgs, LogFormat};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address of the HTTPS admission listener.
    #[arg(long, env = "KIW_LISTEN", default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// Address of the plain-HTTP listener for /healthz, /readyz and /metrics.
    #[arg(long, env = "KIW_ADMIN_LISTEN", default_value = "0.0.0.0:9090")]
    admin_listen: SocketAddr,
    /// PEM certificate chain of the serving certificate.
    #[arg(long, env = "KIW_TLS_CERT", default_value = "certs/tls.crt")]
    tls_cert: PathBuf,
    /// PEM private key of the serving certificate.
    #[arg(long, env = "KIW_TLS_KEY", default_value = "certs/tls.key")]
    tls_key: PathBuf,
    /// Generate a throwaway CA and serving certificate when the files are missing.
    #[arg(long, env = "KIW_DEV", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_parser = super::flags::GoBool)]
    dev: bool,
    /// Service name the dev certificate is issued for (`<service>.<namespace>.svc`).
    #[arg(
        long,
        env = "KIW_SERVICE_NAME",
        default_value = "kuma-identity-webhook"
    )]
    service_name: String,
    /// Namespace the dev certificate is issued for.
    #[arg(long, env = "KIW_SERVICE_NAMESPACE", default_value = "kuma-system")]
    service_namespace: String,
    /// YAML file of Mesh, MeshIdentity, Namespace and Pod objects to decide against; without
    /// it, the state comes from the Kubernetes API (in-cluster config, else KUBECONFIG).
    #[arg(long, env = "KIW_CLUSTER_STATE")]
    cluster_state: Option<PathBuf>,
    /// Watch pods in these namespaces only (comma-separated); all namespaces by default.
    #[arg(long, env = "KIW_WATCH_NAMESPACES", value_delimiter = ',')]
    watch_namespaces: Vec<String>,
    /// Turn unready when a watch has been failing for longer than this many seconds.
    #[arg(long, env = "KIW_STALENESS_SECONDS", default_value_t = 120)]
    staleness_seconds: u64,
    /// PEM CA bundle: when given, clients of the HTTPS listener must present a certificate
    /// signed by one of its CAs. Re-read every 2 s.
    #[arg(long, env = "KIW_CLIENT_CA")]
    client_ca: Option<PathBuf>,
    /// On SIGTERM or Ctrl-C, how long to keep accepting and answering (with /readyz 503) while
    /// the endpoint removal reaches kube-apiserver: a duration (`5s`, `500ms`) or seconds.
    #[arg(long, env = "KIW_SHUTDOWN_DELAY", default_value = "5s", value_parser = parse_flag_duration)]
    shutdown_delay: Duration,
    /// After the delay, how long requests still in flight get to finish before their
    /// connections are closed: a duration (`20s`) or seconds.
    #[arg(long, env = "KIW_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_flag_duration)]
    shutdown_grace: Duration,
    /// Log format.
    #[arg(long, env = "KIW_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Memory that admission requests in flight may take together, in bytes (each reserves 40
    /// times its body). A quarter of the container's memory limit; a request that does not fit
    /// waits until its timeout is nearly spent, then gets 503.
    #[arg(long, env = "KIW_MAX_INFLIGHT_BYTES", default_value_t = DEFAULT_MAX_INFLIGHT_BYTES)]
    max_inflight_bytes: usize,
    #[command(flatten)]
    decisions: DecisionArgs,
}

/// A quarter of the shipped Deployment's 256 MiB memory limit: the rest covers the cluster state,
/// the runtime and the responses being written.
const DEFAULT_MAX_INFLIGHT_BYTES: usize = 64 * 1024 * 1024;

pub fn run(args: ServeArgs) -> ExitCode {
    init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(serve(args));
    // Whatever still runs (connections past the grace period, the watches) is dropped without
    // waiting for it.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "server stopped");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Installed first, so a signal during start-up is a shutdown like any other.
    let mut signals = ShutdownSignals::install().context("installing signal handlers")?;
    if args.dev {
        let names = certs::serving_names(&args.service_name, &args.service_namespace);
        if let Some(ca) = certs::ensure_dev_pair(&args.tls_cert, &args.tls_key, &names)? {
            tracing::info!(ca = %ca.display(), "generated a development CA and serving certificate; trust the CA to call the server");
        }
    }
    let cert_store = Arc::new(CertStore::load(&args.tls_cert, &args.tls_key)?);
    let client_ca = match &args.client_ca {
        Some(path) => Some(Arc::new(ClientCa::load(path)?)),
        None => None,
    };
    let tls_config =
        tls::server_config(cert_store.clone(), client_ca.clone().map(|ca| ca as Arc<_>))?;
    let state = Arc::new(StateHandle::default());
    let metrics = Arc::new(Metrics::new());
    let app = routes::App::new(
        state.clone(),
        args.decisions.settings(),
        metrics.clone(),
        args.max_inflight_bytes,
    );
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let admin = TcpListener::bind(args.admin_listen)
        .await
        .with_context(|| format!("binding {}", args.admin_listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        admin = %admin.local_addr()?,
        client_auth = client_ca.is_some(),
        "serving"
    );

    // Supervisors of the background tasks; none of them ends unless something is badly wrong.
    let mut background: Vec<JoinHandle<()>> = Vec::new();
    match &args.cluster_state {
        Some(path) => {
            let snapshot = file::load(path)?;
            tracing::info!(
                file = %path.display(),
                meshes = snapshot.mesh_count(),
                mesh_identities = snapshot.identity_count(),
                pods = snapshot.pod_count(),
                "cluster state loaded"
            );
            state.set(Arc::new(snapshot));
        }
        None => {
            let kube_config = kube::Config::infer()
                .await
                .context("finding the Kubernetes API (no --cluster-state given)")?;
            let config = watch::WatchConfig {
                system_namespace: app.settings.system_namespace.clone(),
                pod_namespaces: args.watch_namespaces.clone(),
                staleness_bound: Duration::from_secs(args.staleness_seconds),
            };
            background.extend(
                watch::start(kube_config, config, state.clone(), metrics.clone())
                    .context("creating the Kubernetes client")?,
            );
            tracing::info!("watching the Kubernetes API; ready once every resource is listed");
        }
    }
    background.push(supervise::spawn(
        "certificate-reload",
        &metrics,
        move |metrics| cert_store.clone().watch(metrics),
    ));
    if let Some(client_ca) = client_ca {
        background.push(supervise::spawn(
            "client-ca-reload",
            &metrics,
            move |metrics| client_ca.clone().watch(metrics),
        ));
    }

    let (audit_state, audit_settings) = (state.clone(), app.settings.clone());
    background.push(supervise::spawn("audit", &metrics, move |metrics| {
        audit::live::run(
            audit_state.clone(),
            audit_settings.clone(),
            metrics,
            audit::live::Schedule::DEFAULT,
        )
    }));

    let drain = Drain::new();
    let context = |listener| ServeContext::new(listener, drain.clone(), metrics.clone());
    let mut admission = tokio::spawn(server::serve_tls(
        listener,
        tls_config,
        routes::admission_router(app.clone()),
        context(Listener::Admission),
    ));
    let mut admin = tokio::spawn(server::serve_admin(
        admin,
        routes::admin_router(app),
        context(Listener::Admin),
    ));
    tokio::select! {
        ended = &mut admission => return Err(listener_ended("admission", ended)),
        ended = &mut admin => return Err(listener_ended("admin", ended)),
        () = first_to_end(&mut background) => anyhow::bail!("a background task supervisor stopped"),
        signal = signals.next() => tracing::info!(signal, "shutdown requested"),
    }
    state.start_draining();
    tokio::select! {
        _ = drain.run(args.shutdown_delay, args.shutdown_grace, &metrics) => Ok(()),
        signal = signals.next() => {
            anyhow::bail!("{signal} received during the drain; exiting without finishing it")
        }
    }
}

/// Why a listener task ended before any shutdown: it only ends on its own by failing.
fn listener_ended(
    which: &str,
    ended: Result<std::io::Result<()>, tokio::task::JoinError>,
) -> anyhow::Error {
    match ended {
        Ok(Err(e)) => anyhow::Error::new(e).context(format!("{which} listener")),
        Ok(Ok(())) => anyhow::anyhow!("{which} listener stopped"),
        Err(e) => anyhow::anyhow!("{which} listener task failed: {e}"),
    }
}

/// Resolves when the first of `tasks` ends; never when there are none.
async fn first_to_end(tasks: &mut [JoinHandle<()>]) {
    if tasks.is_empty() {
        std::future::pending::<()>().await;
    }
    let _ = futures::future::select_all(tasks.iter_mut()).await;
}

/// SIGTERM (what the kubelet sends) and SIGINT (Ctrl-C), as they arrive.
struct ShutdownSignals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The next signal's name.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.terminate.recv() => "SIGTERM",
                _ = self.interrupt.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
