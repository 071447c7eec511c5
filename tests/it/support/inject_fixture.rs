//! The SPIRE socket injection fixtures (tests/fixtures/inject/*.yaml; format in its README),
//! shared by the pure golden test and the HTTPS test.

use std::fs;
use std::path::{Path, PathBuf};

use kuma_identity_webhook::inject::InjectConfig;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    pub description: String,
    #[serde(default)]
    pub config: ConfigSpec,
    pub pod: Value,
    pub expect: Expect,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSpec {
    pub enabled_by_default: Option<bool>,
    pub mount_path: Option<String>,
    pub socket_file_name: Option<String>,
}

impl ConfigSpec {
    pub fn build(&self) -> InjectConfig {
        let d = InjectConfig::default();
        InjectConfig {
            enabled_by_default: self.enabled_by_default.unwrap_or(d.enabled_by_default),
            mount_path: self.mount_path.clone().unwrap_or(d.mount_path),
            socket_file_name: self.socket_file_name.clone().unwrap_or(d.socket_file_name),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub allowed: bool,
    #[serde(default)]
    pub no_patch: bool,
    pub skip: Option<String>,
    pub targets: Option<Vec<String>>,
    #[serde(default)]
    pub warnings_contain: Vec<String>,
    #[serde(default)]
    pub message_contains: Vec<String>,
    /// Why a denied pod was denied (`invalid_opt_in` or `malformed`), the metric's reason label.
    pub deny_reason: Option<String>,
    pub patch: Option<Value>,
    pub patched: Option<Value>,
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inject")
}

pub fn load_all() -> Vec<(PathBuf, Fixture)> {
    let mut paths: Vec<PathBuf> = fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            let fx: Fixture =
                serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, fx)
        })
        .collect()
}
