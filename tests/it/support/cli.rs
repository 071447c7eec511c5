//! The built binary, run as a user would run it.

use std::process::Command;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn cli(args: &[&str]) -> Run {
    cli_with_env(args, &[])
}

/// The binary with `args`, and `env` set over an environment cleared of the settings the tests
/// vary.
pub fn cli_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_kuma-identity-webhook"))
        .args(args)
        .env_remove("KUMA_RUNTIME_KUBERNETES_INJECTOR_SPIRE_ENABLED")
        .env_remove("KIW_KUMA_VERSION")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
