//! `kubectl kustomize`, the renderer users apply the manifests with (kustomize is built into
//! kubectl). Tests that need it skip, with a note, on machines without kubectl; CI has it.

use std::path::Path;

use serde_json::Value;

use kuma_identity_webhook::cluster::file::parse_documents;

/// The objects `kubectl kustomize DIR` renders; `None` when kubectl cannot be run here.
pub fn render(dir: &Path) -> Option<Vec<Value>> {
    let output = match std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            eprintln!("kubectl not runnable ({e}); {} not rendered", dir.display());
            return None;
        }
    };
    assert!(
        output.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(parse_documents(&String::from_utf8(output.stdout).unwrap()).unwrap())
}
