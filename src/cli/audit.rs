//! `audit`: the pods already in the cluster (or in a cluster-state file) whose identity is
//! broken, one line per finding, kubectl-table style or JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::json;

use kuma_identity_webhook::audit::{self, Row};
use kuma_identity_webhook::cluster::list::{
    list_cluster, ListScope, PodScope, Progress, PAGE_SIZE,
};
use kuma_identity_webhook::cluster::{self, Snapshot};

use super::{DecisionArgs, Exit};

/// The namespace kubectl uses when neither `--namespace` nor `-A` is given and the kubeconfig
/// names none.
const DEFAULT_NAMESPACE: &str = "default";
/// kubectl's table: columns apart by three spaces.
const COLUMN_GAP: usize = 3;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    /// A kubectl-style table.
    Table,
    /// One JSON document with every finding.
    Json,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Audit this cluster state (Meshes, MeshIdentities, Namespaces, Pods) instead of the live
    /// cluster (kubeconfig or in-cluster).
    #[arg(long, env = "KIW_CLUSTER_STATE")]
    cluster_state: Option<PathBuf>,
    /// Only pods of this namespace.
    #[arg(short = 'n', long, conflicts_with = "all_namespaces")]
    namespace: Option<String>,
    /// Pods of every namespace.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Output,
    #[command(flatten)]
    decisions: DecisionArgs,
}

pub fn run(args: AuditArgs) -> ExitCode {
    let settings = args.decisions.settings();
    let loaded = match &args.cluster_state {
        Some(path) => cluster::file::load(path)
            .map(|snapshot| (snapshot, None))
            .map_err(|e| e.to_string()),
        None => live(&args, &settings.system_namespace),
    };
    let (snapshot, context_namespace) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Unreadable.into();
        }
    };
    let namespace = (!args.all_namespaces).then(|| {
        args.namespace
            .clone()
            .or(context_namespace)
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
    });
    let rows = audit::audit(&snapshot, &settings, namespace.as_deref());
    match args.output {
        Output::Table => print_table(&rows, namespace.as_deref()),
        Output::Json => println!("{}", json!({ "findings": rows })),
    }
    if rows.is_empty() {
        Exit::CLEAN.into()
    } else {
        Exit::FINDINGS.into()
    }
}

/// The live cluster, listed once, and the kubeconfig's namespace.
fn live(args: &AuditArgs, system_namespace: &str) -> Result<(Snapshot, Option<String>), String> {
    let scope = ListScope {
        system_namespace: system_namespace.to_owned(),
        pods: match (&args.namespace, args.all_namespaces) {
            (_, true) => PodScope::All,
            (Some(ns), false) => PodScope::Namespace(ns.clone()),
            (None, false) => PodScope::Context,
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut progress = |event: Progress| match event {
        // One line per page once the list needs more than one: large clusters take a while.
        Progress::Page { plural, seen } if seen > PAGE_SIZE as usize => {
            eprintln!("listed {seen} {plural}…");
        }
        Progress::Page { .. } => {}
        Progress::Skipped {
            plural,
            name,
            error,
        } => {
            eprintln!("warning: {plural} {name} does not decode, left out: {error}");
        }
    };
    let (snapshot, namespace) = runtime
        .block_on(list_cluster(&scope, &mut progress))
        .map_err(|e| e.to_string())?;
    Ok((snapshot, Some(namespace)))
}

/// kubectl's table: the NAMESPACE column only across namespaces, and "No findings" on stderr
/// when there is nothing to print.
fn print_table(rows: &[Row], namespace: Option<&str>) {
    if rows.is_empty() {
        match namespace {
            Some(ns) => eprintln!("No findings in {ns} namespace."),
            None => eprintln!("No findings."),
        }
        return;
    }
    let mut header = vec!["POD", "MESHIDENTITY", "FINDING", "ACTION"];
    if namespace.is_none() {
        header.insert(0, "NAMESPACE");
    }
    let lines: Vec<Vec<&str>> = rows
        .iter()
        .map(|row| {
            let mut cells = vec![
                row.pod.as_str(),
                row.identity.as_deref().unwrap_or("<none>"),
                row.finding.as_str(),
                row.action.as_str(),
            ];
            if namespace.is_none() {
                cells.insert(0, row.namespace.as_str());
            }
            cells
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for cells in &lines {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for cells in std::iter::once(&header).chain(&lines) {
        let mut line = String::new();
        for (cell, width) in cells.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}", width = width + COLUMN_GAP));
        }
        println!("{}", line.trim_end());
    }
}
