//! Per-connection read deadlines for HTTP/1.1 keep-alive.
//!
//! hyper has one knob for HTTP/1.1, `header_read_timeout`, and its timer also runs while a
//! keep-alive connection sits idle waiting for the next request. kube-apiserver keeps idle
//! webhook connections for up to 90 s and reuses them, so a short header timeout would close
//! connections it is about to use, while a long one lets a slow client hold a connection by
//! dribbling headers. This wrapper separates the two: it watches the bytes read for the end of a
//! request head (`\r\n\r\n`) and applies the header deadline only while a head is arriving, and
//! the idle deadline while nothing is.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Where the connection is in its request cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first byte of a request head.
    Idle,
    /// Reading a request head; `matched` counts the bytes of `\r\n\r\n` seen so far.
    Head { matched: u8 },
    /// Head complete: the body and the handler run under the request timeout, not ours.
    Busy,
}

pub struct Deadlines {
    /// How long a request head may take from its first byte (and the first one after the
    /// handshake).
    pub header: Duration,
    /// How long a connection may sit between requests.
    pub idle: Duration,
}

pub struct DeadlineIo<S> {
    inner: S,
    phase: Phase,
    deadlines: Deadlines,
    timer: Pin<Box<Sleep>>,
}

impl<S> DeadlineIo<S> {
    /// Starts in the head phase: a client that connects must send its first request promptly.
    pub fn new(inner: S, deadlines: Deadlines) -> Self {
        let timer = Box::pin(tokio::time::sleep(deadlines.header));
        Self {
            inner,
            phase: Phase::Head { matched: 0 },
            deadlines,
            timer,
        }
    }

    fn arm(&mut self, after: Duration) {
        self.timer.as_mut().reset(Instant::now() + after);
    }
    /// A response going out ends the busy phase: what is read next is the next request.
    fn response_started(&mut self) {
        if self.phase == Phase::Busy {
            self.phase = Phase::Idle;
            self.arm(self.deadlines.idle);
        }
    }
}

/// Advances the phase over bytes just read; also says whether a new request head began.
fn advance(mut phase: Phase, bytes: &[u8]) -> (Phase, bool) {
    let mut head_started = false;
    for &byte in bytes {
        phase = match phase {
            Phase::Idle => {
                head_started = true;
                Phase::Head {
                    matched: next_match(0, byte),
                }
            }
            Phase::Head { matched } => match next_match(matched, byte) {
                4 => Phase::Busy,
                matched => Phase::Head { matched },
            },
            Phase::Busy => return (Phase::Busy, head_started),
        };
    }
    (phase, head_started)
}

/// One step of matching `\r\n\r\n`.
fn next_match(matched: u8, byte: u8) -> u8 {
    const END: [u8; 4] = *b"\r\n\r\n";
    if END.get(usize::from(matched)) == Some(&byte) {
        matched + 1
    } else if byte == b'\r' {
        1
    } else {
        0
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DeadlineIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let (phase, head_started) = advance(self.phase, &buf.filled()[before..]);
                self.phase = phase;
                if head_started {
                    let header = self.deadlines.header;
                    self.arm(header);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if self.phase != Phase::Busy && self.timer.as_mut().poll(cx).is_ready() {
                    let what = if self.phase == Phase::Idle {
                        "idle connection"
                    } else {
                        "request head"
                    };
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("{what} timed out"),
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DeadlineIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.response_started();
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.response_started();
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_matching() {
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
}
