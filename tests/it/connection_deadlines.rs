//! Every connection deadline on both listeners, the admission (TLS) and the admin (plain HTTP)
//! one, through the real server with short deadlines so the whole set runs in seconds: header
//! deadlines counted the way hyper's parser counts heads (leading empty lines, bare line feeds),
//! idle deadlines, write deadlines for clients that stop reading, and refused bodies that close
//! their connection. `server_protocol.rs` covers the production values.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::support::raw::{
    h2_healthz, h2_idle, h2_preface, small_window_tcp, time_until_closed, tls_handshake,
};
use crate::support::{
    example_state, expect_http1_response, ServerOptions, TestServer,
    MESHIDENTITY_PATH as MESHIDENTITY,
};
use kuma_identity_webhook::config::Settings;
use kuma_identity_webhook::server::routes::MAX_BODY_BYTES;
use kuma_identity_webhook::server::timeouts::Deadlines;

/// Short enough to run the set in seconds; the handshake deadline is longer than the others so
/// that handshakes of the other cases, sharing two cores with the floods, are not cut.
const DEADLINES: Deadlines = Deadlines {
    handshake: Duration::from_millis(2000),
    header: Duration::from_millis(1000),
    idle: Duration::from_millis(3000),
    write: Duration::from_millis(1000),
};

/// How late a deadline may act on a loaded 2-core machine (timers run late, never early).
const LATE: Duration = Duration::from_secs(4);

fn assert_at(what: &str, elapsed: Duration, deadline: Duration) {
    // The server's clock starts a little after ours (when it reads the bytes we sent).
    let early = Duration::from_millis(100);
    assert!(
        elapsed + early >= deadline && elapsed <= deadline + LATE,
        "{what}: ended after {elapsed:?}, deadline {deadline:?}"
    );
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Clone, Copy, Debug)]
enum Side {
    Admission,
    Admin,
}

/// A connection to one listener, HTTP/1.1, with a small receive window.
async fn connect(server: &TestServer, side: Side) -> Box<dyn Io> {
    match side {
        Side::Admission => {
            let tcp = small_window_tcp(server.addr).await;
            Box::new(tls_handshake(tcp, server.ca_pem.as_bytes(), b"http/1.1").await)
        }
        Side::Admin => Box::new(small_window_tcp(server.admin_addr).await),
    }
}

/// Empty lines, which the parser skips, then a request line trickled in and never finished:
/// a head in progress all along, cut at the header deadline (not held until hyper's own timer,
/// nor until the idle deadline).
async fn leading_empty_lines_then_a_trickle_are_held_to_the_header_deadline(
    server: &TestServer,
    side: Side,
) {
    let stream = connect(server, side).await;
    let (mut read, mut write) = tokio::io::split(stream);
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        write.write_all(b"\r\n\r\n").await.unwrap();
        for &byte in b"GET /healthz HTTP/1.1\r\nHost: localhost" {
            tokio::time::sleep(Duration::from_millis(150)).await;
            if write.write_all(&[byte]).await.is_err() {
                return;
            }
        }
    });
    let what = format!("{side:?}: empty lines then a trickle");
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(DEADLINES.header + LATE, read.read_to_end(&mut sink)).await;
    assert_at(&what, started.elapsed(), DEADLINES.header);
    assert!(sink.is_empty(), "{what}: answered {sink:?}");
    trickle.abort();
}

/// A head that ends with bare line feeds is a complete head to hyper: it is answered, the
/// connection is reused after longer than the header deadline, and closed at the idle one.
async fn bare_lf_heads_are_answered_and_idle_under_the_idle_deadline(
    server: &TestServer,
    side: Side,
) {
    let mut stream = connect(server, side).await;
    let what = format!("{side:?}: bare LF");
    for head in [
        &b"GET /healthz HTTP/1.1\nHost: localhost\n\n"[..],
        b"\r\nGET /healthz HTTP/1.1\r\nHost: localhost\r\n\n",
    ] {
        stream.write_all(head).await.unwrap();
        let response = expect_http1_response(&mut stream, &what).await;
        assert!(
            response.starts_with("HTTP/1.1 200 OK\r\n"),
            "{what}: {response}"
        );
        tokio::time::sleep(DEADLINES.header + Duration::from_millis(500)).await;
    }
    let elapsed = time_until_closed(&what, &mut stream).await;
    // Already idle for header + 500 ms when the clock started.
    assert_at(
        &what,
        elapsed + DEADLINES.header + Duration::from_millis(500),
        DEADLINES.idle,
    );
}

/// A client that sends requests and never reads the answers: once the server's writes stall
/// it is cut off at the write deadline, which the client sees as its own writes failing.
async fn a_client_that_stops_reading_is_cut_off_at_the_write_deadline(
    server: &TestServer,
    side: Side,
) {
    let path = match side {
        Side::Admission => "/healthz",
        Side::Admin => "/metrics",
    };
    let stream = connect(server, side).await;
    let (read, mut write) = tokio::io::split(stream);
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").repeat(100);
    let started = Instant::now();
    let flood = async {
        while write.write_all(request.as_bytes()).await.is_ok() {}
        started.elapsed()
    };
    let elapsed = tokio::time::timeout(Duration::from_secs(20), flood)
        .await
        .unwrap_or_else(|_| panic!("{side:?}: a client that does not read was never cut off"));
    drop(read);
    // The stall itself takes a moment to build up (the server first answers as many requests
    // as the socket buffers hold, slowly on a loaded machine), so this bound only rules out a
    // connection left open; the metric the caller checks says it was the write deadline.
    assert!(
        elapsed <= DEADLINES.write + 2 * LATE,
        "{side:?}: cut after {elapsed:?}"
    );
}

/// An admin request whose body never arrives: no admin route reads a body, so it is answered
/// at once and the connection closed rather than held.
async fn an_admin_request_with_a_body_that_never_comes_is_answered_and_closed(server: &TestServer) {
    let mut stream = connect(server, Side::Admin).await;
    stream
        .write_all(b"POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n{")
        .await
        .unwrap();
    let response = expect_http1_response(&mut stream, "admin body").await;
    assert!(response.starts_with("HTTP/1.1 405 "), "{response}");
    let closed = time_until_closed("admin body", &mut stream).await;
    assert!(
        closed < Duration::from_secs(2),
        "open {closed:?} after the answer"
    );
}

/// A `Content-Length` over the limit with `Expect: 100-continue`: 413 at once, no
/// `100 Continue` inviting the body first, and the connection closed.
async fn an_oversized_declared_body_gets_413_without_100_continue(server: &TestServer) {
    let mut stream = connect(server, Side::Admission).await;
    let head = format!(
        "POST {MESHIDENTITY}?timeout=10s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY_BYTES + 1
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let response = expect_http1_response(&mut stream, "oversized body").await;
    assert!(response.starts_with("HTTP/1.1 413 "), "{response}");
    assert!(response.contains("\r\nconnection: close\r\n"), "{response}");
    let closed = time_until_closed("after 413", &mut stream).await;
    assert!(closed < Duration::from_secs(2), "open {closed:?} after 413");
}

/// HTTP/2 under the short idle deadline: reused after more than the header deadline, then sent
/// GOAWAY once idle for the idle deadline.
async fn an_idle_h2_connection_is_sent_goaway_at_the_idle_deadline(server: &TestServer) {
    let mut tls = server.tls(b"h2").await;
    tls.write_all(&h2_preface()).await.unwrap();
    h2_healthz(&mut tls, 1).await;
    let quiet = DEADLINES.header + Duration::from_millis(500);
    assert_eq!(h2_idle(&mut tls, quiet).await, Ok(()));
    h2_healthz(&mut tls, 3).await;
    let started = Instant::now();
    let ended = h2_idle(&mut tls, DEADLINES.idle + LATE).await;
    assert_eq!(ended, Err("GOAWAY"));
    assert_at("idle h2", started.elapsed(), DEADLINES.idle);
}

/// A client that connects and never starts its TLS handshake.
async fn a_silent_client_is_cut_at_the_handshake_deadline(server: &TestServer) {
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let elapsed = time_until_closed("silent", &mut silent).await;
    assert_at("silent", elapsed, DEADLINES.handshake);
}

fn count(metrics: &str, listener: &str, kind: &str) -> u64 {
    let prefix = format!(
        "kuma_identity_webhook_connection_deadline_cuts_total{{listener=\"{listener}\",kind=\"{kind}\"}} "
    );
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_deadline_on_both_listeners() {
    let options = ServerOptions {
        deadlines: Some(DEADLINES),
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(Some(example_state()), Settings::default(), options).await;
    tokio::join!(
        leading_empty_lines_then_a_trickle_are_held_to_the_header_deadline(
            &server,
            Side::Admission
        ),
        leading_empty_lines_then_a_trickle_are_held_to_the_header_deadline(&server, Side::Admin),
        bare_lf_heads_are_answered_and_idle_under_the_idle_deadline(&server, Side::Admission),
        bare_lf_heads_are_answered_and_idle_under_the_idle_deadline(&server, Side::Admin),
        a_client_that_stops_reading_is_cut_off_at_the_write_deadline(&server, Side::Admission),
        a_client_that_stops_reading_is_cut_off_at_the_write_deadline(&server, Side::Admin),
        an_admin_request_with_a_body_that_never_comes_is_answered_and_closed(&server),
        an_oversized_declared_body_gets_413_without_100_continue(&server),
        an_idle_h2_connection_is_sent_goaway_at_the_idle_deadline(&server),
        a_silent_client_is_cut_at_the_handshake_deadline(&server),
    );
    let metrics = server.metrics.encode();
    for (listener, kind, want) in [
        ("admission", "handshake", 1),
        ("admission", "header", 1),
        ("admission", "idle", 2),
        ("admission", "write", 1),
        ("admin", "header", 1),
        ("admin", "idle", 1),
        ("admin", "write", 1),
    ] {
        assert_eq!(
            count(&metrics, listener, kind),
            want,
            "{listener} {kind}:\n{metrics}"
        );
    }
    // Both listeners still serve.
    let healthz = server.client(false).get(server.url("/healthz")).send();
    assert_eq!(healthz.await.unwrap().status(), 200);
    let admin = reqwest::get(format!("http://{}/healthz", server.admin_addr));
    assert_eq!(admin.await.unwrap().status(), 200);
}
