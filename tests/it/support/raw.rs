//! Clients written byte by byte, for tests that must stop anywhere in a protocol: raw TLS
//! connections, a minimal HTTP/2 framer, and timing helpers for deadlines.

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Opens a TLS connection to `addr` by hand, trusting only `ca_pem`, checking the name
/// `localhost` and offering only `alpn`, so the test controls every byte.
pub async fn tls_connect(addr: SocketAddr, ca_pem: &[u8], alpn: &[u8]) -> Tls {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tls_handshake(tcp, ca_pem, alpn).await
}

/// [`tls_connect`] over a TCP connection of the caller's making.
pub async fn tls_handshake(tcp: tokio::net::TcpStream, ca_pem: &[u8], alpn: &[u8]) -> Tls {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config =
        rustls::ClientConfig::builder_with_provider(kuma_identity_webhook::server::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tls = connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
    tls
}

pub type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TCP connection with a receive buffer as small as the kernel allows, so a client that
/// stops reading stalls the server's writes after a few kilobytes rather than megabytes.
pub async fn small_window_tcp(addr: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Longest the tests wait for a deadline to act: the deadline plus slack for a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Asserts that something cut off after `elapsed` was cut off by a deadline of `deadline`, not
/// much earlier or later (a loaded 2-core machine runs late, never early).
pub fn assert_cut_off_at(what: &str, elapsed: Duration, deadline: Duration) {
    assert!(
        elapsed + Duration::from_secs(1) >= deadline
            && elapsed <= deadline + Duration::from_secs(4),
        "{what}: cut off after {elapsed:?}, deadline {deadline:?}"
    );
}

/// Reads until the peer closes the connection (or resets it) and returns how long that took;
/// fails if it is still open after [`PATIENCE`].
pub async fn time_until_closed<R: tokio::io::AsyncRead + Unpin>(
    what: &str,
    stream: &mut R,
) -> Duration {
    let started = std::time::Instant::now();
    let mut sink = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut sink)).await;
    assert!(
        read.is_ok(),
        "{what}: connection still open after {PATIENCE:?}"
    );
    started.elapsed()
}

// A minimal HTTP/2 client, byte by byte, so the tests can stop anywhere in the protocol.

pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const H2_HEADERS: u8 = 0x1;
pub const H2_SETTINGS: u8 = 0x4;
pub const H2_PING: u8 = 0x6;
pub const H2_GOAWAY: u8 = 0x7;
pub const H2_ACK: u8 = 0x1;
pub const H2_END_STREAM_AND_HEADERS: u8 = 0x5;

pub fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The client preface and an empty SETTINGS frame: everything before a first request.
pub fn h2_preface() -> Vec<u8> {
    let mut bytes = H2_PREFACE.to_vec();
    bytes.extend(h2_frame(H2_SETTINGS, 0, 0, &[]));
    bytes
}

/// `GET path` on `stream`, HPACK-encoded with the static table and plain literals.
pub fn h2_get(stream: u32, path: &str) -> Vec<u8> {
    // :method GET and :scheme https are static-table entries 2 and 7.
    let mut block = vec![0x82, 0x87];
    // Literals without indexing, named by static-table entries 4 (:path) and 1 (:authority).
    for (name, value) in [(4u8, path), (1, "localhost")] {
        block.push(name);
        block.push(u8::try_from(value.len()).unwrap());
        block.extend_from_slice(value.as_bytes());
    }
    h2_frame(H2_HEADERS, H2_END_STREAM_AND_HEADERS, stream, &block)
}

pub struct H2Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// Reads one frame, answering the server's SETTINGS and PINGs as a live client would; `None`
/// once the connection is closed.
pub async fn h2_read(tls: &mut Tls) -> Option<H2Frame> {
    let mut head = [0u8; 9];
    tls.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0; len];
    tls.read_exact(&mut payload).await.ok()?;
    let frame = H2Frame {
        kind: head[3],
        flags: head[4],
        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
        payload,
    };
    if frame.flags & H2_ACK == 0 {
        // A SETTINGS acknowledgement is empty; a PING one echoes the payload.
        let ack = match frame.kind {
            H2_SETTINGS => Some(h2_frame(H2_SETTINGS, H2_ACK, 0, &[])),
            H2_PING => Some(h2_frame(H2_PING, H2_ACK, 0, &frame.payload)),
            _ => None,
        };
        if let Some(ack) = ack {
            tls.write_all(&ack).await.ok()?;
        }
    }
    Some(frame)
}

/// Sends `GET /healthz` on `stream` and asserts it is answered 200.
pub async fn h2_healthz(tls: &mut Tls, stream: u32) {
    tls.write_all(&h2_get(stream, "/healthz")).await.unwrap();
    let answered = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let frame = h2_read(tls).await.expect("closed before the response");
            if frame.kind == H2_HEADERS && frame.stream == stream {
                return frame.payload;
            }
        }
    });
    let block = answered.await.unwrap();
    // :status 200 is static-table entry 8.
    assert_eq!(block.first(), Some(&0x88), "stream {stream}: {block:?}");
}

/// Keeps a connection idle for `duration`, answering PINGs; says how it ended early, if it did.
pub async fn h2_idle(tls: &mut Tls, duration: Duration) -> Result<(), &'static str> {
    let until = tokio::time::Instant::now() + duration;
    loop {
        match tokio::time::timeout_at(until, h2_read(tls)).await {
            Err(_) => return Ok(()),
            Ok(None) => return Err("closed"),
            Ok(Some(frame)) if frame.kind == H2_GOAWAY => return Err("GOAWAY"),
            Ok(Some(_)) => {}
        }
    }
}
