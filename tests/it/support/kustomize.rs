//! `kubectl kustomize`, the renderer users apply the manifests with (kustomize is built into
//! kubectl). Every machine the tests run on has kubectl (CI's included); a test that cannot run
//! it fails and says why, rather than passing without having checked anything.

use std::path::Path;

use serde_json::Value;

use kuma_identity_webhook::cluster::file::parse_documents;

/// The objects `kubectl kustomize DIR` renders.
pub fn render(dir: &Path) -> Vec<Value> {
    let output = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "kubectl is needed to render {} and could not be run ({e}); install kubectl",
                dir.display()
            )
        });
    assert!(
        output.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    parse_documents(&String::from_utf8(output.stdout).unwrap()).unwrap()
}
