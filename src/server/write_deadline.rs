//! A deadline on writes that make no progress: a client that stops reading its responses is cut
//! off instead of holding a connection, its task and its buffered responses for ever.
//!
//! The deadline counts time without progress, not the length of a write: a response that keeps
//! moving, however slowly, is never cut, while one that has not moved a byte for the whole
//! deadline is. A write only waits once the kernel's send buffer and the TLS layer's buffer are
//! full, so a reader that keeps up never starts the clock.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::deadline::{Cut, CutRecorder};

pub struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    /// Runs while a write, flush or shutdown is waiting; reset by any progress.
    timer: Pin<Box<Sleep>>,
    waiting: bool,
    record: CutRecorder,
}

impl<S> WriteDeadline<S> {
    pub fn new(inner: S, limit: Duration, record: CutRecorder) -> Self {
        Self {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
            waiting: false,
            record,
        }
    }

    /// Follows one poll of the write side: progress stops the clock, waiting starts it (or keeps
    /// it running) and fails the write once it has run out.
    fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.waiting = false;
            return polled;
        }
        if !self.waiting {
            self.waiting = true;
            self.timer.as_mut().reset(Instant::now() + self.limit);
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            self.waiting = false;
            (self.record)(Cut::Write);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("peer read nothing for {:?}", self.limit),
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        self.check(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn recorder() -> (CutRecorder, Arc<Mutex<Vec<Cut>>>) {
        let cuts = Arc::new(Mutex::new(Vec::new()));
        let seen = cuts.clone();
        (Arc::new(move |cut| seen.lock().unwrap().push(cut)), cuts)
    }

    /// A reader that stops reading is cut off at the deadline; one that reads slowly is not.
    #[tokio::test]
    async fn a_stalled_reader_is_cut_off_and_a_slow_one_is_not() {
        let limit = Duration::from_millis(300);
        let (record, cuts) = recorder();
        let (mut client, server) = tokio::io::duplex(1024);
        let mut writer = WriteDeadline::new(server, limit, record);
        let chunk = vec![b'x'; 256];

        // A slow reader: 256 bytes every 100 ms keeps the writer moving well past the limit.
        let slow = async {
            let mut buf = [0u8; 256];
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                client.read_exact(&mut buf).await.unwrap();
            }
        };
        let write = async {
            for _ in 0..20 {
                writer.write_all(&chunk).await.unwrap();
            }
        };
        tokio::join!(slow, write);
        assert!(cuts.lock().unwrap().is_empty());

        // Now the reader stops: the buffer fills and the write fails at the limit.
        let started = Instant::now();
        let mut result = Ok(());
        for _ in 0..100 {
            result = writer.write_all(&chunk).await;
            if result.is_err() {
                break;
            }
        }
        let elapsed = started.elapsed();
        let error = result.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(elapsed >= limit, "{elapsed:?}");
        assert!(elapsed < limit * 5, "{elapsed:?}");
        assert_eq!(*cuts.lock().unwrap(), [Cut::Write]);
        drop(client);
    }
}
