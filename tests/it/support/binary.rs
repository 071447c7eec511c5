//! The built binary as a user runs it: `serve --dev` on free loopback ports with its dev
//! certificates in a temporary directory, stderr (the log) captured to a file. Killed on drop.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::tempdir;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Binary {
    pub child: std::process::Child,
    /// The TLS admission port.
    pub port: u16,
    /// The plain-HTTP admin port.
    pub admin: u16,
    /// Holds the dev certificates (`ca.crt`, `tls.crt`, `tls.key`) and `stderr.log`.
    pub dir: PathBuf,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Binary {
    /// `serve --dev` with `args` after the listener and certificate flags, and `env` set (the
    /// cluster variables of the test process removed, so nothing reaches a real cluster).
    pub fn serve(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::serve_without_dev_flag(&[&["--dev"], args].concat(), env)
    }

    /// `serve` as [`Binary::serve`] starts it, but with no `--dev` flag of its own: the
    /// certificate files are still in [`Binary::dir`], for `args` or `env` to have generated.
    pub fn serve_without_dev_flag(args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempdir();
        let (port, admin) = (free_port(), free_port());
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kuma-identity-webhook"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--admin-listen",
                &format!("127.0.0.1:{admin}"),
                "--tls-cert",
                dir.join("tls.crt").to_str().unwrap(),
                "--tls-key",
                dir.join("tls.key").to_str().unwrap(),
            ])
            .args(args)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBECONFIG")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Self {
            child,
            port,
            admin,
            dir,
        }
    }

    /// Sends the process a signal (`TERM`, `INT`), as the kubelet or a terminal would.
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -s {name} failed");
    }

    /// Waits up to `limit` for the process to exit; its exit status, or `None` if it still runs.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if started.elapsed() >= limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The dev CA the binary wrote, PEM.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("ca.crt")).unwrap()
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    /// An admin endpoint's status and body; `None` while nothing listens yet.
    pub async fn admin_get(&self, path: &str) -> Option<(u16, String)> {
        let url = format!("http://127.0.0.1:{}{path}", self.admin);
        let response = reqwest::get(url).await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    /// `/readyz` on the admin port; `None` while nothing listens yet.
    pub async fn readyz(&self) -> Option<u16> {
        self.admin_get("/readyz").await.map(|(status, _)| status)
    }

    pub async fn wait_ready(&self, started: Instant, limit: Duration) {
        while self.readyz().await != Some(200) {
            assert!(
                started.elapsed() < limit,
                "not ready after {limit:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A client that trusts only the dev CA the binary wrote, and checks the name `localhost`.
    pub fn client(&self, http2: bool) -> reqwest::Client {
        super::verifying_client(&self.ca_pem(), self.addr(), http2)
    }

    /// The TLS admission listener's address.
    pub fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }
}
