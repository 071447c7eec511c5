//! Boolean settings read as Kuma reads them (Go's `strconv.ParseBool`), through the built binary:
//! every spelling Kuma accepts works in the environment, and anything else stops start-up with a
//! message naming the variable, its value and the accepted spellings. A value Kuma accepts must
//! never keep the webhook down, since its pod webhooks fail closed.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::binary::Binary;
use crate::support::{repo_path, tempdir};

const SPIRE_ENABLED: &str = "KUMA_RUNTIME_KUBERNETES_INJECTOR_SPIRE_ENABLED";
const TRUE_SPELLINGS: [&str; 6] = ["1", "t", "T", "TRUE", "true", "True"];
const FALSE_SPELLINGS: [&str; 6] = ["0", "f", "F", "FALSE", "false", "False"];
const ACCEPTED: &str =
    "a boolean is one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False";

/// The binary with `args` and only `env` among the boolean settings.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kuma-identity-webhook"))
        .args(args)
        .env_remove(SPIRE_ENABLED)
        .env_remove("KIW_DEV")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBECONFIG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `inject` decides with the same settings as `serve`: the CronJob's pod does not opt in, so it
/// is injected exactly when the variable reads as true.
#[test]
fn spire_enabled_reads_every_go_spelling_from_the_environment() {
    let workloads = repo_path("tests/fixtures/offline/workloads.yaml");
    let cases = TRUE_SPELLINGS
        .iter()
        .map(|s| (*s, "cronjob/report injected"))
        .chain(
            FALSE_SPELLINGS
                .iter()
                .map(|s| (*s, "cronjob/report skipped: disabled")),
        );
    for (spelling, want) in cases {
        let output = run(
            &["inject", "-f", workloads.to_str().unwrap()],
            &[(SPIRE_ENABLED, spelling)],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{spelling}: {stderr}");
        assert!(stderr.lines().any(|l| l == want), "{spelling}: {stderr}");
    }
}

/// `serve` stops before binding anything, with clap's usage exit code and a message naming the
/// variable, the flag, the value and every accepted spelling.
#[test]
fn an_unreadable_boolean_stops_serve_and_names_the_variable() {
    for (variable, flag, value) in [
        (SPIRE_ENABLED, "--spire-enabled", "yes"),
        (SPIRE_ENABLED, "--spire-enabled", "enabled"),
        ("KIW_DEV", "--dev", "on"),
    ] {
        let output = run(&["serve"], &[(variable, value)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{variable}={value}: {stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "invalid value '{value}' for {variable} ({flag}): {ACCEPTED}"
            )),
            "{variable}={value}: {stderr}"
        );
    }
}

/// `KIW_DEV` in Go's spellings: a true one makes `serve` generate its certificates and become
/// ready; a false one leaves the missing certificate files an error.
#[tokio::test]
async fn kiw_dev_reads_go_spellings() {
    let state = repo_path("deploy/examples/cluster-state.yaml");
    for spelling in ["1", "T", "True"] {
        let binary = Binary::serve_without_dev_flag(
            &["--cluster-state", state.to_str().unwrap()],
            &[("KIW_DEV", spelling)],
        );
        binary
            .wait_ready(Instant::now(), Duration::from_secs(30))
            .await;
        assert!(binary.dir.join("ca.crt").exists(), "{spelling}");
    }
    for spelling in ["0", "F", "false"] {
        let dir = tempdir();
        let cert = dir.join("tls.crt");
        let output = run(
            &[
                "serve",
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                dir.join("tls.key").to_str().unwrap(),
                "--cluster-state",
                state.to_str().unwrap(),
            ],
            &[("KIW_DEV", spelling)],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{spelling}: {stderr}");
        assert!(!cert.exists(), "{spelling}: no certificate is generated");
    }
}
