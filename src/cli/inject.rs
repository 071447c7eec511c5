//! `inject`: the manifests with the SPIRE agent socket injected, as the mutating webhook would.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use kuma_identity_webhook::inject::{self, InjectDecision};
use kuma_identity_webhook::offline::{self, pod_template_pointer};

use super::{DecisionArgs, Exit};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    Yaml,
    Json,
}

#[derive(Args, Debug)]
pub struct InjectArgs {
    /// Manifests to inject: files, directories, or - for standard input.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    output: Output,
    #[command(flatten)]
    decisions: DecisionArgs,
}

pub fn run(args: InjectArgs) -> ExitCode {
    let sources = match offline::load_sources(&args.files) {
        Ok(sources) => sources,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Unreadable.into();
        }
    };
    let config = args.decisions.settings().inject;
    let mut denied = false;
    let mut objects = Vec::new();
    for source in sources {
        let mut object = source.object;
        if let Some(pointer) = pod_template_pointer(&object) {
            let name = offline::short_name(&object);
            if let Some(template) = object.pointer_mut(pointer) {
                let (mutated, decision) = inject::apply(template, &config);
                match &decision {
                    InjectDecision::Inject { warnings, .. } => {
                        *template = mutated;
                        eprintln!("{name} injected");
                        warnings
                            .iter()
                            .for_each(|w| eprintln!("Warning: {name}: {w}"));
                    }
                    InjectDecision::Skip { reason, warnings } => {
                        eprintln!("{name} skipped: {}", reason.as_str());
                        warnings
                            .iter()
                            .for_each(|w| eprintln!("Warning: {name}: {w}"));
                    }
                    InjectDecision::Deny { message, .. } => {
                        denied = true;
                        eprintln!("{name} denied: {message}");
                    }
                }
            }
        }
        objects.push(object);
    }
    let printed = match args.output {
        Output::Yaml => objects
            .iter()
            .map(serde_yaml_ng::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map(|docs| docs.join("---\n"))
            .map_err(|e| e.to_string()),
        Output::Json => {
            let value: Value = match objects.as_slice() {
                [single] => single.clone(),
                _ => json!({"apiVersion": "v1", "kind": "List", "items": objects}),
            };
            serde_json::to_string_pretty(&value)
                .map(|text| text + "\n")
                .map_err(|e| e.to_string())
        }
    };
    match printed {
        Ok(text) => print!("{text}"),
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Unreadable.into();
        }
    }
    if denied {
        Exit::Denied.into()
    } else {
        ExitCode::SUCCESS
    }
}
