//! Per-connection deadlines: for HTTP/1.1 keep-alive the header and idle deadlines, and for
//! every connection the write deadline of [`WriteClock`].
//!
//! hyper has one knob for HTTP/1.1, `header_read_timeout`, and its timer also runs while a
//! keep-alive connection sits idle waiting for the next request. kube-apiserver keeps idle
//! webhook connections for up to 90 s and reuses them, so a short header timeout would close
//! connections it is about to use, while a long one lets a slow client hold a connection by
//! dribbling headers. This wrapper separates the two: it follows the bytes read to the end of a
//! request head, exactly where hyper's parser ends it ([`HeadScan`]), and applies the header
//! deadline from the first byte of a head (empty lines the parser skips included) to its end,
//! and the idle deadline while nothing is arriving.
//!
//! Once a head is complete the request is busy and none of these deadlines apply: the admission
//! handlers bound the body read themselves ([`super::routes::BODY_READ_TIMEOUT`]) and answer 408.
//! The request stays busy until the final response starts going out; interim `1xx` responses
//! (hyper writes `100 Continue` before it reads the body of an `Expect: 100-continue` request)
//! do not end it, or the body that follows would be taken for the next head.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::head::HeadScan;
use super::timeouts::{Cut, CutRecorder, Deadlines};
use super::write_deadline::WriteClock;

/// Where the connection is in its request cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first byte of a request head.
    Idle,
    /// Reading a request head.
    Head(HeadScan),
    /// Head complete: the body and the handler run under the handler's body-read timeout, not
    /// ours. `out` follows the response bytes written so far, to tell an interim response from
    /// the final one.
    Busy { out: Out },
}

/// Where the response side of a busy request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// At the start of a response head, `seen` bytes into it.
    Status { seen: u8 },
    /// Inside an interim (`1xx`) response head; `matched` counts the bytes of `\r\n\r\n` seen.
    Interim { matched: u8 },
}

/// A response head starts with `HTTP/1.1 `, so its status class is the byte at this offset.
const STATUS_CLASS_OFFSET: u8 = 9;

/// The phase right after a head completes: nothing of the response written yet.
const BUSY: Phase = Phase::Busy {
    out: Out::Status { seen: 0 },
};

/// A connection's transport under its deadlines: the write deadline always, and for HTTP/1.1 the
/// header and idle deadlines, following the request cycle in the bytes that pass.
pub struct DeadlineIo<S> {
    inner: S,
    /// `None` for HTTP/2, whose request cycle the connection's watchdog follows in whole
    /// requests instead.
    reads: Option<Reads>,
    writes: WriteClock,
    record: CutRecorder,
}

/// The HTTP/1.1 request cycle and its read deadlines.
struct Reads {
    phase: Phase,
    deadlines: Deadlines,
    timer: Pin<Box<Sleep>>,
    /// The task of the last read that found nothing to read. hyper does not read again until
    /// that read is woken, so when the final response starts and the idle deadline is armed, the
    /// reader is woken to poll (and so register) the timer; otherwise an idle connection would
    /// wait on the socket alone, under no deadline.
    read_waker: Option<Waker>,
}

impl<S> DeadlineIo<S> {
    /// HTTP/1.1: starts in the head phase, since a client that connects must send its first
    /// request promptly.
    pub fn http1(inner: S, deadlines: Deadlines, record: CutRecorder) -> Self {
        let reads = Reads {
            phase: Phase::Head(HeadScan::default()),
            deadlines,
            timer: Box::pin(tokio::time::sleep(deadlines.header)),
            read_waker: None,
        };
        Self {
            inner,
            reads: Some(reads),
            writes: WriteClock::new(deadlines.write),
            record,
        }
    }

    /// HTTP/2: the write deadline only.
    pub fn http2(inner: S, deadlines: Deadlines, record: CutRecorder) -> Self {
        Self {
            inner,
            reads: None,
            writes: WriteClock::new(deadlines.write),
            record,
        }
    }
}

impl Reads {
    fn arm(&mut self, after: Duration) {
        self.timer.as_mut().reset(Instant::now() + after);
    }

    /// Follows request bytes just read.
    fn read(&mut self, bytes: &[u8]) {
        let (phase, head_started) = advance(self.phase, bytes);
        self.phase = phase;
        if head_started {
            self.arm(self.deadlines.header);
        }
    }

    /// A read found nothing: the deadline of the phase, if any, fails it once it has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Option<Cut> {
        match &mut self.read_waker {
            Some(waker) => waker.clone_from(cx.waker()),
            None => self.read_waker = Some(cx.waker().clone()),
        }
        let cut = match self.phase {
            Phase::Busy { .. } => return None,
            Phase::Idle => Cut::Idle,
            Phase::Head(_) => Cut::Header,
        };
        self.timer.as_mut().poll(cx).is_ready().then_some(cut)
    }

    /// Follows response bytes just written: the final response going out ends the busy phase,
    /// and what is read next is the next request.
    fn wrote(&mut self, bytes: &[u8]) {
        if let Phase::Busy { out } = self.phase {
            match advance_written(out, bytes) {
                Some(out) => self.phase = Phase::Busy { out },
                None => {
                    self.phase = Phase::Idle;
                    self.arm(self.deadlines.idle);
                    if let Some(reader) = self.read_waker.take() {
                        reader.wake();
                    }
                }
            }
        }
    }

    /// [`Reads::wrote`] over the first `n` bytes of `bufs`.
    fn wrote_vectored(&mut self, bufs: &[io::IoSlice<'_>], mut n: usize) {
        for buf in bufs {
            if n == 0 {
                break;
            }
            let taken = n.min(buf.len());
            self.wrote(buf.get(..taken).unwrap_or(buf));
            n -= taken;
        }
    }
}

/// Advances over response bytes written while a request is busy; `None` once a final (non-1xx)
/// response has begun.
fn advance_written(mut out: Out, bytes: &[u8]) -> Option<Out> {
    for &byte in bytes {
        out = match out {
            Out::Status { seen } if seen == STATUS_CLASS_OFFSET => {
                if byte == b'1' {
                    Out::Interim { matched: 0 }
                } else {
                    return None;
                }
            }
            Out::Status { seen } => Out::Status { seen: seen + 1 },
            Out::Interim { matched } => match next_match(matched, byte) {
                4 => Out::Status { seen: 0 },
                matched => Out::Interim { matched },
            },
        };
    }
    Some(out)
}

/// Advances the phase over bytes just read; also says whether a new request head began.
fn advance(phase: Phase, bytes: &[u8]) -> (Phase, bool) {
    let (scan, head_started) = match phase {
        busy @ Phase::Busy { .. } => return (busy, false),
        Phase::Idle if bytes.is_empty() => return (phase, false),
        Phase::Idle => (HeadScan::default(), true),
        Phase::Head(scan) => (scan, false),
    };
    // Bytes after the end of the head are body, or a pipelined request that hyper reads from
    // its own buffer; either way they are not this head.
    match scan.feed_all(bytes) {
        Ok(scan) => (Phase::Head(scan), head_started),
        Err(_) => (BUSY, head_started),
    }
}

/// One step of matching `\r\n\r\n`, the end of a response head as hyper writes it.
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
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let Some(reads) = this.reads.as_mut() else {
            return polled;
        };
        match polled {
            Poll::Ready(Ok(())) => reads.read(&buf.filled()[before..]),
            Poll::Ready(Err(_)) => {}
            Poll::Pending => {
                if let Some(cut) = reads.poll_deadline(cx) {
                    (this.record)(cut);
                    let what = match cut {
                        Cut::Idle => "idle connection",
                        _ => "request head",
                    };
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("{what} timed out"),
                    )));
                }
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DeadlineIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        if let (Some(reads), Poll::Ready(Ok(n))) = (this.reads.as_mut(), &polled) {
            reads.wrote(data.get(..*n).unwrap_or(data));
        }
        this.writes.check(cx, polled, &this.record)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let (Some(reads), Poll::Ready(Ok(n))) = (this.reads.as_mut(), &polled) {
            reads.wrote_vectored(bufs, *n);
        }
        this.writes.check(cx, polled, &this.record)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.writes.check(cx, polled, &this.record)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.writes.check(cx, polled, &this.record)
    }
}

#[cfg(test)]
#[path = "deadline_tests.rs"]
mod tests;
