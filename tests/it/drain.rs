//! Shutdown drops nothing: the real binary, under load on keep-alive connections (HTTP/1.1 and
//! HTTP/2) and with requests in flight, gets SIGTERM. `/readyz` turns 503 at once on both
//! listeners; requests keep being answered through the shutdown delay; then the listener
//! closes, the requests in flight are answered, every connection is closed gracefully (TLS
//! close_notify, HTTP/2 GOAWAY), and the process exits 0 well within delay + grace.
//!
//! Which requests may fail: only those whose connection could not be made because the listener
//! had closed (they never left the client). Any other failure, and any connection failure
//! before the listener closed, fails the test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::binary::Binary;
use crate::support::raw::{tls_connect, Tls};
use crate::support::{meshidentity_review, read_http1_response, repo_path, MESHIDENTITY_PATH};

const DELAY: Duration = Duration::from_secs(1);
const GRACE: Duration = Duration::from_secs(5);
/// Load workers per protocol.
const WORKERS: usize = 4;

fn serve() -> Binary {
    let state = repo_path("deploy/examples/cluster-state.yaml");
    Binary::serve(
        &[
            "--cluster-state",
            state.to_str().unwrap(),
            "--shutdown-delay",
            "1s",
            "--shutdown-grace",
            "5",
            "--log-format",
            "json",
        ],
        &[],
    )
}

fn review_body() -> Vec<u8> {
    serde_json::to_vec(&meshidentity_review(json!({
        "apiVersion": "kuma.io/v1alpha1", "kind": "MeshIdentity",
        "metadata": {"name": "x", "namespace": "kuma-system"}, "spec": {}
    })))
    .unwrap()
}

/// What became of one load request, and when (since the test began).
enum Outcome {
    Answered {
        at: Duration,
    },
    /// The connection could not be made (refused, or cut during its TLS handshake): the
    /// request never left the client.
    NotConnected {
        at: Duration,
    },
    Failed {
        at: Duration,
        error: String,
    },
}

/// Posts reviews back to back until `stop`.
async fn load(
    client: reqwest::Client,
    url: String,
    stop: Arc<AtomicBool>,
    epoch: Instant,
) -> Vec<Outcome> {
    let body = review_body();
    let mut outcomes = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let sent = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        let answered = match sent {
            Ok(response) if response.status() == 200 => match response.bytes().await {
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            },
            Ok(response) => {
                let error = format!("status {}", response.status());
                outcomes.push(Outcome::Failed {
                    at: epoch.elapsed(),
                    error,
                });
                continue;
            }
            Err(e) => Err(e),
        };
        let at = epoch.elapsed();
        outcomes.push(match answered {
            Ok(()) => Outcome::Answered { at },
            Err(e) if e.is_connect() => {
                // Nothing listens any more: back off a little rather than spin.
                tokio::time::sleep(Duration::from_millis(5)).await;
                Outcome::NotConnected { at }
            }
            Err(e) => Outcome::Failed {
                at,
                error: format!("{e:?}"),
            },
        });
    }
    outcomes
}

/// An HTTP/1.1 review sent up to half its body: in flight, waiting for the rest.
async fn start_h1_request(binary: &Binary) -> (Tls, Vec<u8>) {
    let body = review_body();
    let mut tls = tls_connect(binary.addr(), &binary.ca_pem(), b"http/1.1").await;
    let head = format!(
        "POST {MESHIDENTITY_PATH}?timeout=10s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(first).await.unwrap();
    (tls, rest.to_vec())
}

/// An HTTP/2 review sent up to half its body.
struct H2Request {
    client: h2::client::SendRequest<Bytes>,
    body: h2::SendStream<Bytes>,
    response: h2::client::ResponseFuture,
    connection: tokio::task::JoinHandle<Result<(), h2::Error>>,
    rest: Bytes,
}

async fn start_h2_request(binary: &Binary) -> H2Request {
    let body = review_body();
    let tls = tls_connect(binary.addr(), &binary.ca_pem(), b"h2").await;
    let (client, connection) = h2::client::handshake(tls).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::post(format!("https://localhost{MESHIDENTITY_PATH}?timeout=10s"))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (response, mut stream) = client.send_request(request, false).unwrap();
    let half = body.len() / 2;
    stream
        .send_data(Bytes::copy_from_slice(&body[..half]), false)
        .unwrap();
    H2Request {
        client,
        body: stream,
        response,
        connection,
        rest: Bytes::copy_from_slice(&body[half..]),
    }
}

trait ConnectionEnd {
    /// Ended cleanly, or by an I/O error once the server had closed its side.
    fn is_ok_or_io(&self) -> bool;
}

impl ConnectionEnd for Result<&(), &h2::Error> {
    fn is_ok_or_io(&self) -> bool {
        self.is_ok_and(|_| true) || self.is_err_and(|e| e.is_io())
    }
}

/// Connects to `addr` every few milliseconds (closing each connection at once) until it is
/// refused; when that was.
async fn until_refused(addr: std::net::SocketAddr, limit: Duration) -> Instant {
    let started = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return Instant::now();
        }
        assert!(started.elapsed() < limit, "still accepting after {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// When the server logged `line`.
fn logged_at(line: &Value) -> SystemTime {
    let text = line["timestamp"].as_str().unwrap();
    let rfc3339 = time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, &rfc3339).unwrap().into()
}

/// The JSON log line whose message starts with `message`.
fn log_line(log: &str, message: &str) -> Value {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message))
        })
        .unwrap_or_else(|| panic!("no {message:?} in the log:\n{log}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drops_nothing_and_exits_0() {
    let (epoch, wall_epoch) = (Instant::now(), SystemTime::now());
    let mut binary = serve();
    binary.wait_ready(epoch, Duration::from_secs(30)).await;

    // A keep-alive connection that made a request and sits idle, and one request of each
    // protocol stopped half-way through its body.
    let mut idle = tls_connect(binary.addr(), &binary.ca_pem(), b"http/1.1").await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    read_http1_response(&mut idle).await.unwrap();
    let (mut h1_in_flight, h1_rest) = start_h1_request(&binary).await;
    let mut h2_in_flight = start_h2_request(&binary).await;

    let stop = Arc::new(AtomicBool::new(false));
    let url = binary.url(&format!("{MESHIDENTITY_PATH}?timeout=10s"));
    let mut workers = Vec::new();
    for http2 in [false, true] {
        let client = binary.client(http2);
        for _ in 0..WORKERS {
            let load = load(client.clone(), url.clone(), stop.clone(), epoch);
            workers.push(tokio::spawn(load));
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let admin = reqwest::Client::new();
    let readyz = format!("http://127.0.0.1:{}/readyz", binary.admin);
    assert_eq!(admin.get(&readyz).send().await.unwrap().status(), 200);
    let idle_closed = tokio::spawn(async move {
        let mut rest = Vec::new();
        let read = idle.read_to_end(&mut rest).await;
        (Instant::now(), read.map(|_| rest))
    });
    // Upper bounds are timed from before `kill` runs, readiness from its return (the signal
    // delivered), since a loaded machine can take tens of milliseconds to run a process.
    let kill_started = Instant::now();
    binary.signal("TERM");
    let sigterm = Instant::now();

    // Unready at once, on the admin listener and on the admission listener.
    loop {
        let status = admin.get(&readyz).send().await.unwrap().status();
        if status == 503 {
            break;
        }
        assert!(
            sigterm.elapsed() < Duration::from_secs(1),
            "/readyz still {status}"
        );
    }
    let unready_after = sigterm.elapsed();
    let tls_readyz = binary.client(false).get(binary.url("/readyz")).send();
    assert_eq!(tls_readyz.await.unwrap().status(), 503);

    let closed = until_refused(binary.addr(), DELAY + Duration::from_secs(2)).await;
    let closed_after = closed - kill_started;

    // The requests in flight finish now, after the listener closed, and are answered.
    h1_in_flight.write_all(&h1_rest).await.unwrap();
    let response = read_http1_response(&mut h1_in_flight)
        .await
        .expect("in-flight HTTP/1.1 request not answered");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains(r#""allowed":true"#), "{response}");
    assert!(response.contains("\r\nconnection: close\r\n"), "{response}");
    let mut rest = Vec::new();
    // Ok means a TLS close_notify before the end, not a cut connection.
    h1_in_flight.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());

    h2_in_flight
        .body
        .send_data(h2_in_flight.rest.clone(), true)
        .unwrap();
    let response = h2_in_flight.response.await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut answer = Vec::new();
    while let Some(chunk) = body.data().await {
        answer.extend_from_slice(&chunk.unwrap());
    }
    assert!(String::from_utf8_lossy(&answer).contains(r#""allowed":true"#));
    // The server said GOAWAY, with no error, and then closed the connection. (The client's own
    // goodbye may find the socket closed already; that is the client's business.)
    let goaway = h2_in_flight.client.ready().await.expect_err("no GOAWAY");
    assert!(
        goaway.is_go_away() && goaway.is_remote() && goaway.reason() == Some(h2::Reason::NO_ERROR),
        "{goaway:?}"
    );
    let ended = tokio::time::timeout(Duration::from_secs(5), h2_in_flight.connection)
        .await
        .expect("HTTP/2 connection still open")
        .unwrap();
    assert!(ended.as_ref().is_ok_or_io(), "{ended:?}");

    // The idle keep-alive connection was closed when the listener closed, cleanly.
    let (idle_end, idle_read) = idle_closed.await.unwrap();
    assert_eq!(idle_read.unwrap(), b"", "idle connection got something");
    let idle_closed_after = idle_end - kill_started;

    let status = binary
        .wait_exit(DELAY + GRACE + Duration::from_secs(2))
        .await
        .expect("still running after delay + grace");
    let exited_after = kill_started.elapsed();
    assert_eq!(status.code(), Some(0), "log:\n{}", binary.log());
    stop.store(true, Ordering::Relaxed);

    // Every request that left a client was answered; the only ones not answered could not
    // connect, and only once the server had begun to close its listener (by its own log).
    let log = binary.log();
    let stopped_accepting = logged_at(&log_line(&log, "shutdown: stopped accepting"));
    let closed_at = stopped_accepting.duration_since(wall_epoch).unwrap();
    let accepted_for = stopped_accepting
        .duration_since(logged_at(&log_line(&log, "shutdown: draining")))
        .unwrap();
    let sigterm_at = sigterm - epoch;
    let (mut sent, mut not_connected, mut during_drain) = (0, 0, 0);
    let mut failures = Vec::new();
    for worker in workers {
        for outcome in worker.await.unwrap() {
            match outcome {
                Outcome::Answered { at } => {
                    sent += 1;
                    during_drain += usize::from(at > sigterm_at);
                }
                Outcome::NotConnected { at } if at >= closed_at => not_connected += 1,
                Outcome::NotConnected { at } => {
                    failures.push(format!("{at:?}: no connection before the listener closed"))
                }
                Outcome::Failed { at, error } => {
                    sent += 1;
                    failures.push(format!("{at:?}: {error}"));
                }
            }
        }
    }
    let finished = log_line(&log, "shutdown: drain finished");
    eprintln!(
        "drain: {sent} requests sent, {} failed, {during_drain} answered after SIGTERM, \
         {not_connected} attempts refused after the listener closed; /readyz 503 after \
         {unready_after:?}, kept accepting for {accepted_for:?}, listener refusing after \
         {closed_after:?}, idle connection closed \
         after {idle_closed_after:?}, exit 0 after {exited_after:?}; server: {}",
        failures.len(),
        finished["fields"]
    );
    assert!(
        failures.is_empty(),
        "failed requests:\n{}",
        failures.join("\n")
    );
    assert!(
        unready_after < Duration::from_millis(100),
        "/readyz 503 only after {unready_after:?}"
    );
    // The listener kept accepting through the delay, and closed soon after it.
    assert!(closed_after >= DELAY, "closed after {closed_after:?}");
    assert!(
        closed_after < DELAY + Duration::from_secs(1),
        "closed after {closed_after:?}"
    );
    assert!(during_drain > 0, "nothing answered during the delay");
    assert!(exited_after >= DELAY && exited_after < DELAY + GRACE);
    // Nothing was left for the end of the grace period.
    assert_eq!(finished["fields"]["abandoned"], 0, "{finished}");
    assert_eq!(finished["fields"]["connections_forced"], 0, "{finished}");
    assert!(
        finished["fields"]["answered"].as_u64().unwrap() >= 2,
        "{finished}"
    );
}

/// A second signal during the drain ends the process at once (exit status 1), without waiting
/// for the delay or the grace period.
#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let epoch = Instant::now();
    let state = repo_path("deploy/examples/cluster-state.yaml");
    let mut binary = Binary::serve(
        &[
            "--cluster-state",
            state.to_str().unwrap(),
            "--shutdown-delay",
            "60s",
        ],
        &[],
    );
    binary.wait_ready(epoch, Duration::from_secs(30)).await;
    binary.signal("TERM");
    while binary.readyz().await != Some(503) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = Instant::now();
    binary.signal("INT");
    let status = binary
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("still running after a second signal");
    assert_eq!(status.code(), Some(1));
    assert!(second.elapsed() < Duration::from_secs(2));
    assert!(binary.log().contains("received during the drain"));
}
