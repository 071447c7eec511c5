//! The `certs` command: files, Secret, caBundle, signing with an existing CA, and no overwrites.

use std::process::Command;

use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use crate::support::tempdir;
use kuma_identity_webhook::server::tls;

fn certs(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kuma-identity-webhook"))
        .arg("certs")
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn certs_writes_a_usable_pair_secret_and_ca_bundle() {
    let dir = tempdir();
    let out = dir.join("generated");
    let run = certs(&[
        "--out-dir",
        out.to_str().unwrap(),
        "--namespace",
        "mesh-ops",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let bundle = String::from_utf8(run.stdout).unwrap();
    let ca_pem = std::fs::read_to_string(out.join("ca.crt")).unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(bundle.trim())
        .unwrap();
    assert_eq!(decoded, ca_pem.as_bytes(), "stdout is the base64 caBundle");
    let secret: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(out.join("secret.yaml")).unwrap())
            .unwrap();
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert_eq!(secret["metadata"]["namespace"], "mesh-ops");
    // The pair loads and matches.
    tls::load_server_config(&out.join("tls.crt"), &out.join("tls.key")).unwrap();
    // The certificate names the Service.
    let cert = std::fs::read_to_string(out.join("tls.crt")).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert.as_bytes()).unwrap();
    let parsed = pem.parse_x509().unwrap();
    let sans = format!(
        "{:?}",
        parsed
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
    );
    assert!(
        sans.contains("kuma-identity-webhook.mesh-ops.svc"),
        "{sans}"
    );
    assert!(
        sans.contains("kuma-identity-webhook.mesh-ops.svc.cluster.local"),
        "{sans}"
    );
    // A year's validity, starting a little in the past for clock skew.
    let validity = parsed.validity();
    let days = (validity.not_after.timestamp() - validity.not_before.timestamp()) / 86_400;
    assert!((365..=366).contains(&days), "valid for {days} days");
    // Key material is readable by its owner only.
    #[cfg(unix)]
    for file in ["tls.key", "secret.yaml"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} mode {mode:o}");
    }

    // No silent overwrite.
    let again = certs(&["--out-dir", out.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert!(certs(&["--out-dir", out.to_str().unwrap(), "--force"])
        .status
        .success());
}

#[test]
fn certs_signs_with_an_existing_ca_and_refuses_a_foreign_key() {
    let dir = tempdir();
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("ca-key.pem"), ca_key.serialize_pem()).unwrap();
    std::fs::write(
        dir.join("other-key.pem"),
        KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    let out = dir.join("out");
    let run = certs(&[
        "--out-dir",
        out.to_str().unwrap(),
        "--ca-cert",
        dir.join("ca.pem").to_str().unwrap(),
        "--ca-key",
        dir.join("ca-key.pem").to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(out.join("ca.crt")).unwrap(),
        ca.pem()
    );
    let foreign = certs(&[
        "--out-dir",
        dir.join("x").to_str().unwrap(),
        "--ca-cert",
        dir.join("ca.pem").to_str().unwrap(),
        "--ca-key",
        dir.join("other-key.pem").to_str().unwrap(),
    ]);
    assert!(!foreign.status.success());
    assert!(String::from_utf8_lossy(&foreign.stderr).contains("does not belong"));
}
