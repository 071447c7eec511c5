//! `check`: what `kubectl apply --dry-run=server` would print with this webhook installed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use kuma_identity_webhook::offline::{self, ObjectResult};
use kuma_identity_webhook::state::Snapshot;

use super::DecisionArgs;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    /// kubectl's text.
    Text,
    /// One JSON object per line per checked object.
    Json,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Manifests to check: files, directories, or - for standard input.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Cluster the manifests are applied to (Meshes, MeshIdentities, Namespaces, Pods).
    #[arg(long, env = "KIW_CLUSTER_STATE")]
    cluster_state: Option<PathBuf>,
    /// User the requests are made as (privileged users bypass placement rules).
    #[arg(long, default_value = "kubernetes-admin")]
    user: String,
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: Output,
    #[command(flatten)]
    decisions: DecisionArgs,
}

/// Exit codes: everything admitted, something denied, input unreadable.
const ADMITTED: u8 = 0;
const DENIED: u8 = 1;
const UNREADABLE: u8 = 2;

pub fn run(args: CheckArgs) -> ExitCode {
    let mut state = match &args.cluster_state {
        Some(path) => match Snapshot::load(path) {
            Ok(state) => state,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(UNREADABLE);
            }
        },
        None => Snapshot::default(),
    };
    let sources = match offline::load_sources(&args.files) {
        Ok(sources) => sources,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(UNREADABLE);
        }
    };
    let settings = args.decisions.settings();
    let results = offline::check(&sources, &mut state, &settings, &args.user);
    for result in &results {
        match args.output {
            Output::Text => print_text(result),
            Output::Json => println!("{}", as_json(result)),
        }
    }
    if results.iter().any(|r| r.denial().is_some()) {
        ExitCode::from(DENIED)
    } else {
        ExitCode::from(ADMITTED)
    }
}

/// `meshidentity.kuma.io/web` the way kubectl names objects.
fn resource_name(result: &ObjectResult) -> String {
    let group = result
        .object
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.split_once('/'))
        .map(|(group, _)| format!(".{group}"))
        .unwrap_or_default();
    format!("{}{group}/{}", result.kind.to_lowercase(), result.name)
}

fn print_text(result: &ObjectResult) {
    for warning in result.warnings() {
        eprintln!("Warning: {warning}");
    }
    match result.denial() {
        None => println!(
            "{} {} (server dry run)",
            resource_name(result),
            if result.update {
                "configured"
            } else {
                "created"
            }
        ),
        Some(denial) => {
            let status = &denial.response["response"]["status"];
            let action = if result.update {
                "applying patch for"
            } else {
                "creating"
            };
            eprintln!(
                "Error from server ({}): error when {action} \"{}\": admission webhook \"{}\" denied the request: {}",
                status["reason"].as_str().unwrap_or("BadRequest"),
                result.file,
                denial.webhook.name(),
                status["message"].as_str().unwrap_or_default()
            );
        }
    }
}

fn as_json(result: &ObjectResult) -> Value {
    let denial = result.denial();
    json!({
        "file": result.file,
        "kind": result.kind,
        "name": result.name,
        "namespace": result.namespace,
        "operation": if result.update { "UPDATE" } else { "CREATE" },
        "allowed": denial.is_none(),
        "webhook": denial.map(|d| d.webhook.name()),
        "status": denial.map(|d| d.response["response"]["status"].clone()),
        "warnings": result.warnings(),
        "responses": result.answers.iter().map(|a| json!({"webhook": a.webhook.name(), "response": a.response["response"]})).collect::<Vec<_>>(),
    })
}
