//! Command-line interface: flags (each with an environment twin) and subcommands.

mod audit;
mod certs;
mod check;
mod explain;
mod flags;
mod inject;
mod logging;
mod serve;

use std::process::ExitCode;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};

use kuma_identity_webhook::config::{
    self, Enforcement, InjectConfig, KumaVersion, Settings, WorkloadFallback,
    DEFAULT_PRIVILEGED_USERS,
};

#[derive(Parser)]
#[command(
    name = "kuma-identity-webhook",
    version,
    about = "Admission webhooks for Kuma MeshIdentity and SPIRE agent socket injection"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the admission webhooks over HTTPS.
    Serve(Box<serve::ServeArgs>),
    /// Decide manifests offline, printing what `kubectl apply --dry-run=server` would.
    Check(check::CheckArgs),
    /// Print manifests with the SPIRE agent socket injected, as the mutating webhook would.
    Inject(inject::InjectArgs),
    /// Explain which MeshIdentity a pod gets, its SPIFFE ID, and the socket decision.
    Explain(explain::ExplainArgs),
    /// Find the running pods whose identity is already broken (from a file or the cluster).
    Audit(audit::AuditArgs),
    /// Generate a CA and serving certificate, a Secret, and the caBundle.
    Certs(certs::CertsArgs),
    /// Print the MeshIdentity CRD and a minimal Mesh CRD, generated from the API types.
    Crd,
}

/// How the offline commands exit: everything admitted (or injected), something denied, input
/// unreadable. `audit` exits the same way: clean, findings, unreadable.
#[derive(Debug, Clone, Copy)]
pub enum Exit {
    Admitted = 0,
    Denied = 1,
    Unreadable = 2,
}

impl Exit {
    /// `audit` found nothing.
    pub const CLEAN: Self = Self::Admitted;
    /// `audit` found broken pods.
    pub const FINDINGS: Self = Self::Denied;
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings the decisions depend on; shared by every subcommand.
#[derive(Args, Debug, Clone)]
pub struct DecisionArgs {
    /// Namespace MeshIdentities must be created in.
    #[arg(
        long,
        env = "KUMA_STORE_KUBERNETES_SYSTEM_NAMESPACE",
        default_value = config::DEFAULT_SYSTEM_NAMESPACE
    )]
    system_namespace: String,
    /// This zone's name: `.Zone` in trust domains and the `kuma.io/zone` dataplane label.
    #[arg(long, env = "KUMA_MULTIZONE_ZONE_NAME", default_value = config::DEFAULT_ZONE)]
    zone: String,
    /// Pod labels naming the workload, highest priority first (comma-separated).
    #[arg(
        long,
        env = "KUMA_RUNTIME_KUBERNETES_WORKLOAD_LABELS",
        value_delimiter = ',',
        default_value = ""
    )]
    workload_labels: Vec<String>,
    /// Where a pod's workload comes from when no workload label is set: `none`, or
    /// `service-account` as upstream Kuma does.
    #[arg(
        long,
        env = "KIW_WORKLOAD_FALLBACK",
        value_parser = WorkloadFallback::from_str,
        default_value_t = WorkloadFallback::default()
    )]
    workload_fallback: WorkloadFallback,
    /// Whether pods that would break make a MeshIdentity change fail (`deny`), or only warn
    /// (`warn`).
    #[arg(
        long,
        env = "KIW_WORKLOAD_LABEL_ENFORCEMENT",
        value_parser = Enforcement::from_str,
        default_value_t = Enforcement::default()
    )]
    workload_label_enforcement: Enforcement,
    /// Users that bypass the placement and mesh rules (comma-separated).
    #[arg(long, env = "KIW_PRIVILEGED_USERS", value_delimiter = ',', default_values_t = DEFAULT_PRIVILEGED_USERS.map(str::to_owned))]
    privileged_users: Vec<String>,
    /// The Kuma major version of the cluster, `2` or `3`: 3 turns off the rules about
    /// `Mesh.spec.meshServices`, which Kuma 3 removed.
    #[arg(
        long,
        env = "KIW_KUMA_VERSION",
        value_parser = KumaVersion::from_str,
        default_value_t = KumaVersion::default()
    )]
    kuma_version: KumaVersion,
    /// Mount the SPIRE agent socket into every pod unless it opts out (a boolean as Kuma reads
    /// it: 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False).
    #[arg(long, env = "KUMA_RUNTIME_KUBERNETES_INJECTOR_SPIRE_ENABLED", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_parser = flags::GoBool)]
    spire_enabled: bool,
    /// Where the SPIRE agent socket directory is mounted.
    #[arg(
        long,
        env = "KUMA_RUNTIME_KUBERNETES_INJECTOR_SPIRE_MOUNT_PATH",
        default_value = config::DEFAULT_SPIRE_MOUNT_PATH
    )]
    spire_mount_path: String,
    /// File name of the socket inside the mounted directory.
    #[arg(
        long,
        env = "KUMA_RUNTIME_KUBERNETES_INJECTOR_SPIRE_SOCKET_FILE_NAME",
        default_value = config::DEFAULT_SPIRE_SOCKET_FILE_NAME
    )]
    spire_socket_file_name: String,
}

impl DecisionArgs {
    pub fn settings(&self) -> Settings {
        Settings {
            system_namespace: self.system_namespace.clone(),
            zone: self.zone.clone(),
            workload_labels: self
                .workload_labels
                .iter()
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect(),
            workload_fallback: self.workload_fallback,
            enforcement: self.workload_label_enforcement,
            privileged_users: self.privileged_users.clone(),
            kuma_version: self.kuma_version,
            inject: InjectConfig {
                enabled_by_default: self.spire_enabled,
                mount_path: self.spire_mount_path.clone(),
                socket_file_name: self.spire_socket_file_name.clone(),
            },
        }
    }
}

pub fn run() -> ExitCode {
    // One crypto provider for every TLS user in the process (the server and the Kubernetes
    // client), chosen explicitly rather than by whichever dependency asks first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Check(args) => check::run(args),
        Command::Inject(args) => inject::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Certs(args) => certs::run(args),
        Command::Crd => match kuma_identity_webhook::api::crd::yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
