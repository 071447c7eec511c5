//! `check`: what `kubectl apply --dry-run=server` would print with this webhook installed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use kuma_identity_webhook::cluster::Snapshot;
use kuma_identity_webhook::offline::{self, ObjectResult};

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
    match args.output {
        Output::Text => {
            let errors: Vec<ApplyError> = results.iter().filter_map(print_text).collect();
            report_errors(&errors);
        }
        Output::Json => results.iter().for_each(|r| println!("{}", as_json(r))),
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

/// Prints what kubectl prints as it goes (the success line, warnings) and returns the error it
/// would collect for a denied object.
fn print_text(result: &ObjectResult) -> Option<ApplyError> {
    for warning in result.warnings() {
        eprintln!("Warning: {warning}");
    }
    let Some(denial) = result.denial() else {
        let verb = if result.update {
            "configured"
        } else {
            "created"
        };
        println!("{} {verb} (server dry run)", resource_name(result));
        return None;
    };
    let status = denial.response["response"]["status"].clone();
    let action = if result.update {
        "applying patch for"
    } else {
        "creating"
    };
    // kube-apiserver prefixes the webhook's message; kubectl then names the source file.
    let message = format!(
        "error when {action} \"{}\": admission webhook \"{}\" denied the request: {}",
        result.file,
        denial.webhook.name(),
        status["message"].as_str().unwrap_or_default()
    );
    Some(ApplyError { status, message })
}

/// A denial as kubectl holds it: the API server's Status and its message with the source added.
struct ApplyError {
    status: Value,
    message: String,
}

impl ApplyError {
    fn reason(&self) -> &str {
        self.status["reason"].as_str().unwrap_or_default()
    }

    /// kubectl's one-line form of an API error (`StandardErrorMessage`).
    fn standard(&self) -> String {
        match self.reason() {
            "" => format!("Error from server: {}", self.message),
            reason => format!("Error from server ({reason}): {}", self.message),
        }
    }

    /// kubectl's form for a lone `Invalid` error: the object, then each field cause, with the
    /// message itself left out (the causes carry it).
    fn invalid(&self) -> String {
        let details = &self.status["details"];
        if details.is_null() {
            return format!("The request is invalid: {}", self.message);
        }
        let text = |key: &str| details[key].as_str().unwrap_or_default();
        let subject = if !text("kind").is_empty() || !text("name").is_empty() {
            format!("The {} \"{}\" is invalid", text("kind"), text("name"))
        } else if !text("group").is_empty() {
            format!("The request for {} is invalid", text("group"))
        } else {
            "The request is invalid".to_owned()
        };
        let mut causes: Vec<String> = Vec::new();
        for cause in details["causes"].as_array().into_iter().flatten() {
            let line = format!(
                "{}: {}",
                cause["field"].as_str().unwrap_or_default(),
                cause["message"].as_str().unwrap_or_default()
            );
            // kubectl drops repeated causes.
            if !causes.contains(&line) {
                causes.push(line);
            }
        }
        match causes.as_slice() {
            [] => subject,
            [one] => format!("{subject}: {one}"),
            many => format!(
                "{subject}: \n{}",
                many.iter()
                    .map(|c| format!("* {c}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
    }
}

/// What kubectl prints once every object was applied: a lone error in its own form (the
/// field-by-field one when it is `Invalid`), several errors one standard line each.
fn report_errors(errors: &[ApplyError]) {
    match errors {
        [] => {}
        [only] if only.reason() == "Invalid" => eprintln!("{}", only.invalid()),
        [only] => eprintln!("{}", only.standard()),
        many => many.iter().for_each(|e| eprintln!("{}", e.standard())),
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
