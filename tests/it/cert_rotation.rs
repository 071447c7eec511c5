//! Serving-certificate rotation without a restart: rewritten in place, swapped by a kubelet-style
//! `..data` symlink flip, and a mismatched or half-written pair that must be ignored. A client
//! keeps making requests on fresh connections the whole time and none may fail, and a
//! connection opened before the first rotation keeps working with its original certificate.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::support::tempdir;
use kuma_identity_webhook::cluster::StateHandle;
use kuma_identity_webhook::config::Settings;
use kuma_identity_webhook::metrics::Metrics;
use kuma_identity_webhook::server::drain::Drain;
use kuma_identity_webhook::server::tls::certs::{self, GeneratedPair};
use kuma_identity_webhook::server::tls::store::CertStore;
use kuma_identity_webhook::server::{self, routes, tls, Listener, ServeContext};

fn pair() -> GeneratedPair {
    certs::generate(&certs::serving_names(
        "kuma-identity-webhook",
        "kuma-system",
    ))
    .unwrap()
}

fn leaf_der(pem: &str) -> Vec<u8> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// The leaf certificate a fresh TLS connection is served.
async fn presented(addr: std::net::SocketAddr, roots: &rustls::RootCertStore) -> Vec<u8> {
    HeldConnection::open(addr, roots).await.certificate()
}

async fn wait_for(
    addr: std::net::SocketAddr,
    roots: &rustls::RootCertStore,
    want: &[u8],
    what: &str,
) -> Duration {
    let started = Instant::now();
    while presented(addr, roots).await != want {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: new certificate not served within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

/// One keep-alive HTTP/1.1 connection held open across rotations.
struct HeldConnection {
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
}

impl HeldConnection {
    async fn open(addr: std::net::SocketAddr, roots: &rustls::RootCertStore) -> Self {
        let config = rustls::ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let stream = connector
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap();
        Self { stream }
    }

    /// The certificate this connection was set up with.
    fn certificate(&self) -> Vec<u8> {
        self.stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    }

    /// `GET /healthz` on this same connection; the status line.
    async fn healthz(&mut self) -> String {
        use tokio::io::AsyncWriteExt;
        self.stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await
            .unwrap();
        let response = crate::support::read_http1_response(&mut self.stream)
            .await
            .expect("the held connection was closed");
        response.lines().next().unwrap_or_default().to_owned()
    }
}

/// `notAfter` of a PEM certificate, in Unix seconds.
fn not_after(pem: &str) -> i64 {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    pem.parse_x509().unwrap().validity().not_after.timestamp()
}

fn expiry_metric(metrics: &Metrics) -> i64 {
    let text = metrics.encode();
    let line = text
        .lines()
        .find(|l| l.starts_with("kuma_identity_webhook_tls_certificate_expiry_timestamp_seconds "))
        .unwrap_or_else(|| panic!("no expiry metric:\n{text}"));
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    value as i64
}

fn write_pair(dir: &Path, pair: &GeneratedPair) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("tls.crt"), &pair.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &pair.key_pem).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_in_place_by_symlink_flip_and_half_written() {
    let pairs: Vec<GeneratedPair> = (0..4).map(|_| pair()).collect();
    let mut roots = rustls::RootCertStore::empty();
    for p in &pairs {
        roots
            .add(CertificateDer::from_pem_slice(p.ca_cert_pem.as_bytes()).unwrap())
            .unwrap();
    }

    // The kubelet's layout: files are links through `..data` to a timestamped directory.
    let volume = tempdir();
    write_pair(&volume.join("..2026_11_22_1"), &pairs[0]);
    std::os::unix::fs::symlink("..2026_11_22_1", volume.join("..data")).unwrap();
    for file in ["tls.crt", "tls.key"] {
        std::os::unix::fs::symlink(format!("..data/{file}"), volume.join(file)).unwrap();
    }

    let store =
        Arc::new(CertStore::load(&volume.join("tls.crt"), &volume.join("tls.key")).unwrap());
    let metrics = Arc::new(Metrics::new());
    let app = routes::App::new(
        Arc::new(StateHandle::default()),
        Settings::default(),
        metrics.clone(),
        crate::support::DEFAULT_MAX_INFLIGHT_BYTES,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(server::serve_tls(
        listener,
        tls::server_config(store.clone(), None).unwrap(),
        routes::admission_router(app),
        ServeContext::new(Listener::Admission, Drain::new(), metrics.clone()),
    ));
    let watcher = tokio::spawn(store.clone().watch(metrics.clone()));
    assert_eq!(presented(addr, &roots).await, leaf_der(&pairs[0].cert_pem));
    assert_eq!(expiry_metric(&metrics), not_after(&pairs[0].cert_pem));
    // An open connection set up with the first pair; it must keep working throughout.
    let mut held = HeldConnection::open(addr, &roots).await;
    assert_eq!(held.healthz().await, "HTTP/1.1 200 OK");

    // A client that keeps requesting on fresh connections throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .resolve("localhost", addr)
        .pool_max_idle_per_host(0)
        .use_rustls_tls();
    for p in &pairs {
        client = client.add_root_certificate(
            reqwest::Certificate::from_pem(p.ca_cert_pem.as_bytes()).unwrap(),
        );
    }
    let client = client.build().unwrap();
    let load = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let url = format!("https://localhost:{}/healthz", addr.port());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };

    // 1. Rewritten in place (the two files are written one after the other).
    write_pair(&volume.join("..2026_11_22_1"), &pairs[1]);
    let in_place = wait_for(addr, &roots, &leaf_der(&pairs[1].cert_pem), "in place").await;

    // 2. The symlink flip: a new directory, then `..data` renamed over atomically.
    write_pair(&volume.join("..2026_11_22_2"), &pairs[2]);
    std::os::unix::fs::symlink("..2026_11_22_2", volume.join("..data_tmp")).unwrap();
    std::fs::rename(volume.join("..data_tmp"), volume.join("..data")).unwrap();
    let flipped = wait_for(addr, &roots, &leaf_der(&pairs[2].cert_pem), "symlink flip").await;
    assert_eq!(expiry_metric(&metrics), not_after(&pairs[2].cert_pem));

    // 3. A certificate without its key: ignored, the last good pair keeps being served.
    std::fs::write(volume.join("..2026_11_22_2/tls.crt"), &pairs[3].cert_pem).unwrap();
    tokio::time::sleep(server::tls::POLL_INTERVAL * 3).await;
    assert_eq!(presented(addr, &roots).await, leaf_der(&pairs[2].cert_pem));
    let errors_after_mismatch = metrics.tls_reload_errors.get();
    assert!(errors_after_mismatch >= 1);

    // 4. Half-written: the matching key, but the certificate cut off mid-file. Still ignored.
    let cert = &pairs[3].cert_pem;
    std::fs::write(volume.join("..2026_11_22_2/tls.key"), &pairs[3].key_pem).unwrap();
    std::fs::write(
        volume.join("..2026_11_22_2/tls.crt"),
        &cert[..cert.len() / 2],
    )
    .unwrap();
    tokio::time::sleep(server::tls::POLL_INTERVAL * 3).await;
    assert_eq!(presented(addr, &roots).await, leaf_der(&pairs[2].cert_pem));
    assert!(metrics.tls_reload_errors.get() > errors_after_mismatch);
    assert_eq!(expiry_metric(&metrics), not_after(&pairs[2].cert_pem));

    // The connection opened before any rotation still serves, with the pair it began with.
    assert_eq!(held.healthz().await, "HTTP/1.1 200 OK");
    assert_eq!(held.certificate(), leaf_der(&pairs[0].cert_pem));

    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    watcher.abort();
    server.abort();
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during rotation"
    );
    assert!(ok.load(Ordering::Relaxed) > 10);
    assert!(metrics.tls_reloads.get() >= 2);
    eprintln!("rotation seen after {in_place:?} (in place) and {flipped:?} (symlink flip)");
    std::fs::remove_dir_all(volume).unwrap();
}
