//! `explain`: why each pod (or workload template) gets the identity and socket it gets.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use kuma_identity_webhook::cluster::file;
use kuma_identity_webhook::offline::explain::explain;
use kuma_identity_webhook::offline::{self, pod_of};

use super::{DecisionArgs, Exit};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Pods or workloads to explain: files, directories, or - for standard input.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Cluster to decide against (Meshes, MeshIdentities, Namespaces, Pods).
    #[arg(long, env = "KIW_CLUSTER_STATE")]
    cluster_state: PathBuf,
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: Output,
    #[command(flatten)]
    decisions: DecisionArgs,
}

pub fn run(args: ExplainArgs) -> ExitCode {
    let loaded = file::load(&args.cluster_state)
        .map_err(|e| e.to_string())
        .and_then(|state| {
            Ok((
                state,
                offline::load_sources(&args.files).map_err(|e| e.to_string())?,
            ))
        });
    let (state, sources) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Unreadable.into();
        }
    };
    let settings = args.decisions.settings();
    for source in &sources {
        let Some(pod) = pod_of(&source.object) else {
            eprintln!(
                "{}: runs no pods, skipped",
                offline::short_name(&source.object)
            );
            continue;
        };
        let explanation = explain(&pod, None, &state, &settings);
        match args.output {
            Output::Text => print!("{}", explanation.to_text()),
            Output::Json => match serde_json::to_string(&explanation) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("error: {e}"),
            },
        }
    }
    // Explaining is not judging: a pod whose identity breaks still explains successfully.
    Exit::Admitted.into()
}
