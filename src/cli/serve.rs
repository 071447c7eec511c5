//! `serve`: the HTTPS admission server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;

use kuma_identity_webhook::certs;
use kuma_identity_webhook::live;
use kuma_identity_webhook::metrics::Metrics;
use kuma_identity_webhook::server::reload::CertStore;
use kuma_identity_webhook::server::{self, routes, tls};
use kuma_identity_webhook::state::{Snapshot, StateHandle};

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
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "server stopped");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if args.dev {
        let names = certs::serving_names(&args.service_name, &args.service_namespace);
        if let Some(ca) = certs::ensure_dev_pair(&args.tls_cert, &args.tls_key, &names)? {
            tracing::info!(ca = %ca.display(), "generated a development CA and serving certificate; trust the CA to call the server");
        }
    }
    let cert_store = Arc::new(CertStore::load(&args.tls_cert, &args.tls_key)?);
    let tls_config = tls::server_config(cert_store.clone())?;
    let state = Arc::new(StateHandle::default());
    let app = routes::App::new(
        state.clone(),
        args.decisions.settings(),
        Arc::new(Metrics::new()),
        args.max_inflight_bytes,
    );
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let admin = TcpListener::bind(args.admin_listen)
        .await
        .with_context(|| format!("binding {}", args.admin_listen))?;
    tracing::info!(listen = %listener.local_addr()?, admin = %admin.local_addr()?, "serving");

    match &args.cluster_state {
        Some(path) => {
            let snapshot = Snapshot::load(path)?;
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
            let config = live::WatchConfig {
                system_namespace: app.settings.system_namespace.clone(),
                pod_namespaces: args.watch_namespaces.clone(),
                staleness_bound: std::time::Duration::from_secs(args.staleness_seconds),
            };
            live::start(kube_config, config, state.clone(), app.metrics.clone())
                .context("creating the Kubernetes client")?;
            tracing::info!("watching the Kubernetes API; ready once every resource is listed");
        }
    }

    tokio::spawn(cert_store.watch(app.metrics.clone()));
    let admission = server::serve_tls(listener, tls_config, routes::admission_router(app.clone()));
    let admin = server::serve_admin(admin, routes::admin_router(app));
    tokio::select! {
        result = admission => result.context("admission listener")?,
        result = admin => result.context("admin listener")?,
        _ = shutdown_signal() => tracing::info!("shutting down"),
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}
