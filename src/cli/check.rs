//! `check`: what `kubectl apply --dry-run=server` would print with this webhook installed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use kuma_identity_webhook::admission::response::{answer_json, Subject};
use kuma_identity_webhook::offline::{self, Answer, Cluster, ObjectResult};
use kuma_identity_webhook::verdict::Violation;

use super::{DecisionArgs, Exit};

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

pub fn run(args: CheckArgs) -> ExitCode {
    let mut cluster = match &args.cluster_state {
        Some(path) => match Cluster::load(path) {
            Ok(cluster) => cluster,
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::Unreadable.into();
            }
        },
        None => Cluster::default(),
    };
    let sources = match offline::load_sources(&args.files) {
        Ok(sources) => sources,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Unreadable.into();
        }
    };
    let settings = args.decisions.settings();
    let results = offline::check(&sources, &mut cluster, &settings, &args.user);
    match args.output {
        Output::Text => {
            let errors: Vec<ApplyError> = results.iter().filter_map(print_text).collect();
            report_errors(&errors);
        }
        Output::Json => results
            .iter()
            .enumerate()
            .for_each(|(i, r)| println!("{}", as_json(i, r))),
    }
    if results.iter().any(|r| r.denial().is_some()) {
        Exit::Denied.into()
    } else {
        Exit::Admitted.into()
    }
}

/// `meshidentity.kuma.io/web` the way kubectl names objects.
fn resource_name(result: &ObjectResult) -> String {
    let group = match group_of(&result.object) {
        "" => String::new(),
        group => format!(".{group}"),
    };
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
    let action = if result.update {
        "applying patch for"
    } else {
        "creating"
    };
    // kube-apiserver prefixes the webhook's message; kubectl then names the source file.
    let refusal = denial.verdict.denial.as_ref()?;
    let message = format!(
        "error when {action} \"{}\": admission webhook \"{}\" denied the request: {}",
        result.file,
        denial.webhook.name(),
        refusal.message
    );
    Some(ApplyError {
        reason: refusal.reason,
        kind: result.kind.clone(),
        name: result.name.clone(),
        causes: refusal.causes.clone(),
        message,
    })
}

/// A denial as kubectl holds it: the API server's Status and its message with the source added.
struct ApplyError {
    reason: &'static str,
    /// The object's kind and name, as the Status details name them.
    kind: String,
    name: String,
    causes: Vec<Violation>,
    message: String,
}

impl ApplyError {
    /// kubectl's one-line form of an API error (`StandardErrorMessage`).
    fn standard(&self) -> String {
        match self.reason {
            "" => format!("Error from server: {}", self.message),
            reason => format!("Error from server ({reason}): {}", self.message),
        }
    }

    /// kubectl's form for a lone `Invalid` error: the object, then each field cause, with the
    /// message itself left out (the causes carry it).
    fn invalid(&self) -> String {
        // The Status carries details (kind, name, causes) only with causes.
        if self.causes.is_empty() {
            return format!("The request is invalid: {}", self.message);
        }
        let subject = format!("The {} \"{}\" is invalid", self.kind, self.name);
        let mut causes: Vec<String> = Vec::new();
        for cause in &self.causes {
            let line = format!("{}: {}", cause.field, cause.message);
            // kubectl drops repeated causes.
            if !causes.contains(&line) {
                causes.push(line);
            }
        }
        match causes.as_slice() {
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
        [only] if only.reason == "Invalid" => eprintln!("{}", only.invalid()),
        [only] => eprintln!("{}", only.standard()),
        many => many.iter().for_each(|e| eprintln!("{}", e.standard())),
    }
}

fn as_json(index: usize, result: &ObjectResult) -> Value {
    let response = |answer: &Answer| {
        let uid = format!("offline-{index}-{}", answer.webhook.path());
        let subject = Subject {
            uid: &uid,
            name: &result.name,
            group: group_of(&result.object),
            kind: &result.kind,
        };
        answer_json(subject, &answer.verdict)["response"].take()
    };
    let denial = result.denial();
    json!({
        "file": result.file,
        "kind": result.kind,
        "name": result.name,
        "namespace": result.namespace,
        "operation": result.operation().as_str(),
        "allowed": denial.is_none(),
        "webhook": denial.map(|d| d.webhook.name()),
        "status": denial.map(|d| response(d)["status"].take()),
        "warnings": result.warnings().collect::<Vec<_>>(),
        "responses": result.answers.iter().map(|a| json!({"webhook": a.webhook.name(), "response": response(a)})).collect::<Vec<_>>(),
    })
}

/// The API group of an object, from its `apiVersion`.
fn group_of(object: &Value) -> &str {
    object
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.split_once('/'))
        .map_or("", |(group, _)| group)
}
