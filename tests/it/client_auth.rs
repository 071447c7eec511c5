//! `--client-ca`: the admission listener admits only clients with a certificate chained to the
//! CA in the file, and follows the file as it changes. Clients without a certificate, or with
//! one from another CA, are refused in the handshake and counted; a rotated CA takes over for
//! new connections within a few seconds; a broken file is ignored and the last good CA kept.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::support::{example_state, tempdir, verifying_client_builder, ServerOptions, TestServer};
use kuma_identity_webhook::config::Settings;
use kuma_identity_webhook::server::tls::client_auth::ClientCa;
use kuma_identity_webhook::server::tls::POLL_INTERVAL;

/// A CA that signs client certificates, as the kube-apiserver operator's PKI would.
struct ClientPki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl ClientPki {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca_pem = params.self_signed(&key).unwrap().pem();
        Self {
            ca_pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A client certificate and its key, in one PEM (what `reqwest::Identity` reads).
    fn client(&self, name: &str) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        format!("{}{}", cert.pem(), key.serialize_pem()).into_bytes()
    }
}

/// `GET /healthz` on a fresh connection, presenting `identity`; whether it was answered 200.
async fn answered(server: &TestServer, identity: Option<&[u8]>) -> bool {
    let mut builder = verifying_client_builder(server.ca_pem.as_bytes(), server.addr, false)
        .pool_max_idle_per_host(0);
    if let Some(identity) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(identity).unwrap());
    }
    let client = builder.build().unwrap();
    match client.get(server.url("/healthz")).send().await {
        Ok(response) => response.status() == 200,
        Err(_) => false,
    }
}

/// Waits (up to 10 s, five polls) until `identity` is answered as `want`.
async fn until(server: &TestServer, identity: &[u8], want: bool, what: &str) -> Duration {
    let started = Instant::now();
    while answered(server, Some(identity)).await != want {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: not in force after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

fn metric(server: &TestServer, line_prefix: &str) -> u64 {
    let text = server.metrics.encode();
    text.lines()
        .find_map(|line| line.strip_prefix(line_prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_clients_of_the_client_ca_are_served_and_the_ca_follows_its_file() {
    let (first, second, stranger) = (
        ClientPki::new("apiserver CA"),
        ClientPki::new("next apiserver CA"),
        ClientPki::new("someone else"),
    );
    let (apiserver, next_apiserver, intruder) = (
        first.client("kube-apiserver"),
        second.client("kube-apiserver"),
        stranger.client("kube-apiserver"),
    );
    let dir = tempdir();
    let ca_file = dir.join("client-ca.crt");
    write(&ca_file, &first.ca_pem);
    let client_ca = Arc::new(ClientCa::load(&ca_file).unwrap());
    let options = ServerOptions {
        client_auth: Some(client_ca.clone()),
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(Some(example_state()), Settings::default(), options).await;
    let watcher = tokio::spawn(client_ca.watch(server.metrics.clone()));

    // No certificate, and one from another CA: refused. The right CA: served.
    assert!(
        !answered(&server, None).await,
        "served without a certificate"
    );
    assert!(
        !answered(&server, Some(&intruder)).await,
        "served a stranger"
    );
    assert!(answered(&server, Some(&apiserver)).await);
    let refused =
        "kuma_identity_webhook_tls_handshake_failures_total{reason=\"client_certificate\"} ";
    assert!(metric(&server, refused) >= 2, "{}", server.metrics.encode());

    // Rotated: the new CA is in force for new connections, and the old one no longer.
    write(&ca_file, &second.ca_pem);
    let rotated = until(&server, &next_apiserver, true, "new CA").await;
    assert!(
        !answered(&server, Some(&apiserver)).await,
        "old CA still accepted"
    );
    assert_eq!(
        metric(&server, "kuma_identity_webhook_client_ca_reloads_total "),
        1
    );

    // A broken file (here, a CA cut off mid-way) is ignored: the last good CA stays.
    write(&ca_file, &first.ca_pem[..first.ca_pem.len() / 2]);
    tokio::time::sleep(POLL_INTERVAL * 3).await;
    assert!(answered(&server, Some(&next_apiserver)).await);
    assert!(!answered(&server, Some(&apiserver)).await);
    assert!(
        metric(
            &server,
            "kuma_identity_webhook_client_ca_reload_errors_total "
        ) >= 1
    );

    // A bundle of both CAs admits both, as during a CA rollover.
    write(&ca_file, &format!("{}{}", first.ca_pem, second.ca_pem));
    until(&server, &apiserver, true, "bundle").await;
    assert!(answered(&server, Some(&next_apiserver)).await);
    assert!(!answered(&server, Some(&intruder)).await);

    watcher.abort();
    eprintln!("rotated client CA in force after {rotated:?}");
    std::fs::remove_dir_all(dir).unwrap();
}
