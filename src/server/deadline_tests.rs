//! Tests of the connection deadlines, over in-memory streams.

use std::sync::Arc;

use super::*;

use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

#[test]
fn interim_responses_do_not_end_the_request() {
    let start = Out::Status { seen: 0 };
    assert_eq!(
        advance_written(start, b"HTTP/1.1 100 Continue\r\n\r\n"),
        Some(start)
    );
    assert_eq!(advance_written(start, b"HTTP/1.1 200 OK\r\n"), None);
    assert_eq!(
        advance_written(
            start,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"
        ),
        None
    );
    // Writes may split a head anywhere.
    let mut out = start;
    for piece in [
        &b"HTTP/1"[..],
        b".1 1",
        b"00 Continue\r",
        b"\n\r\n",
        b"HTTP/1.1 ",
    ] {
        out = advance_written(out, piece).unwrap();
    }
    assert_eq!(advance_written(out, b"413"), None);
}

/// Test deadlines: short header and idle deadlines, the others out of the way.
fn deadlines(header: Duration, idle: Duration) -> Deadlines {
    Deadlines {
        header,
        idle,
        ..Deadlines::default()
    }
}

/// A recorder that keeps what it is told.
fn recorder() -> (CutRecorder, Arc<std::sync::Mutex<Vec<Cut>>>) {
    let cuts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = cuts.clone();
    (Arc::new(move |cut| seen.lock().unwrap().push(cut)), cuts)
}

fn deadline_io(server: DuplexStream, deadlines: Deadlines) -> DeadlineIo<DuplexStream> {
    DeadlineIo::http1(server, deadlines, recorder().0)
}

/// Serves HTTP/1.1 on `io` with a handler that echoes the request body.
async fn echo(io: DeadlineIo<DuplexStream>) -> Result<(), hyper::Error> {
    let service = hyper::service::service_fn(|request: hyper::Request<Incoming>| async move {
        let body = request.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>(hyper::Response::new(Full::new(body)))
    });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await
}

/// Reads one response: its head, then as many body bytes as its `content-length` says.
async fn read_response(client: &mut DuplexStream) -> String {
    let mut got = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            if got.len() >= end + 4 + length {
                return text;
            }
        }
        let mut buf = [0u8; 1024];
        let n = client.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed after {text:?}");
        got.extend_from_slice(&buf[..n]);
    }
}

/// hyper answers `Expect: 100-continue` with an interim response before it reads the body;
/// the body that follows must not be held to the header deadline, and the connection must
/// then be idle under the idle deadline.
#[tokio::test]
async fn a_body_after_100_continue_is_not_held_to_the_header_deadline() {
    let deadlines = deadlines(Duration::from_millis(200), Duration::from_secs(30));
    let (mut client, server) = tokio::io::duplex(4096);
    let served = tokio::spawn(echo(deadline_io(server, deadlines)));
    let exchange = async {
        client
            .write_all(
                b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\ncontent-length: 6\r\n\r\n",
            )
            .await
            .unwrap();
        let interim = read_response(&mut client).await;
        assert!(
            interim.starts_with("HTTP/1.1 100 Continue\r\n"),
            "{interim}"
        );
        // The body takes longer than the header deadline to arrive.
        for piece in [b"ab", b"cd", b"ef"] {
            tokio::time::sleep(Duration::from_millis(150)).await;
            client.write_all(piece).await.unwrap();
        }
        let response = read_response(&mut client).await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.ends_with("\r\n\r\nabcdef"), "{response}");
        // Idle for longer than the header deadline, then reused.
        tokio::time::sleep(Duration::from_millis(400)).await;
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let response = read_response(&mut client).await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap();
    assert!(!served.is_finished());
}

/// The deadlines themselves: a head that stalls is cut off at the header deadline, an idle
/// connection at the idle one, and each cut is recorded as what it was.
#[tokio::test]
async fn stalled_heads_and_idle_connections_are_cut_off() {
    let deadlines = deadlines(Duration::from_millis(200), Duration::from_millis(1500));
    // A request line and then nothing; and empty lines, which the parser skips, and then
    // nothing: both are heads in progress.
    for start in [&b"GET / HTTP/1.1\r\n"[..], b"\r\n\r\n", b"\n\n\n"] {
        let (mut stalled, server) = tokio::io::duplex(4096);
        let (record, cuts) = recorder();
        let started = Instant::now();
        let served = tokio::spawn(echo(DeadlineIo::http1(server, deadlines, record)));
        stalled.write_all(start).await.unwrap();
        // hyper reports a cut head as an error, but quietly drops skipped empty lines and
        // ends with Ok; the recorded cut says which deadline fired.
        let _ = served.await.unwrap();
        let elapsed = started.elapsed();
        let what = String::from_utf8_lossy(start);
        assert!(
            elapsed >= Duration::from_millis(200),
            "{what:?}: {elapsed:?}"
        );
        // Well short of the idle deadline: the head deadline cut it, not the idle one.
        assert!(
            elapsed < Duration::from_millis(1500),
            "{what:?}: {elapsed:?}"
        );
        assert_eq!(*cuts.lock().unwrap(), [Cut::Header], "{what:?}");
    }

    // Heads ended the ways the parser ends them, bare line feeds included: each is answered
    // and the connection then idles under the idle deadline, not the header one.
    for head in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET / HTTP/1.1\nHost: x\n\n",
        b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\n",
    ] {
        let (mut idle, server) = tokio::io::duplex(4096);
        let (record, cuts) = recorder();
        let served = tokio::spawn(echo(DeadlineIo::http1(server, deadlines, record)));
        idle.write_all(head).await.unwrap();
        read_response(&mut idle).await;
        let started = Instant::now();
        // hyper ends an idle connection whose read fails quietly, with Ok, so only the end
        // counts.
        let ended = tokio::time::timeout(Duration::from_secs(5), served).await;
        let what = String::from_utf8_lossy(head);
        assert!(ended.is_ok(), "{what:?}: idle connection still open");
        let elapsed = started.elapsed();
        // The timer starts when the response is written, a moment before the client has read
        // it; the slack covers a loaded machine and still rules out the 200 ms head deadline.
        assert!(
            elapsed >= Duration::from_millis(1000),
            "{what:?}: {elapsed:?}"
        );
        let mut rest = Vec::new();
        assert_eq!(idle.read_to_end(&mut rest).await.unwrap(), 0);
        assert_eq!(*cuts.lock().unwrap(), [Cut::Idle], "{what:?}");
    }
}

#[test]
fn response_head_end_matching() {
    let mut matched = 0;
    for &b in b"GET / HTTP/1.1\r\nHost: x\r\n\r" {
        matched = next_match(matched, b);
    }
    assert_eq!(matched, 3);
    assert_eq!(next_match(matched, b'\n'), 4);
    assert_eq!(next_match(2, b'\r'), 3);
    assert_eq!(next_match(1, b'\r'), 1);
    assert_eq!(next_match(3, b'x'), 0);
}
