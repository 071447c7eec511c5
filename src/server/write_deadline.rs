//! The write deadline: a client that stops reading its responses is cut off instead of holding a
//! connection, its task and its buffered responses for ever.
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

use tokio::time::{Instant, Sleep};

use super::timeouts::{Cut, CutRecorder};

/// Times how long the write side of a connection has been waiting.
pub struct WriteClock {
    limit: Duration,
    /// Runs while a write, flush or shutdown is waiting; reset by any progress.
    timer: Pin<Box<Sleep>>,
    waiting: bool,
}

impl WriteClock {
    pub fn new(limit: Duration) -> Self {
        Self {
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
            waiting: false,
        }
    }

    /// Follows one poll of the write side: progress stops the clock, waiting starts it (or keeps
    /// it running) and fails the write once it has run out.
    pub fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
        record: &CutRecorder,
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
            record(Cut::Write);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("peer read nothing for {:?}", self.limit),
            )));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::super::deadline::DeadlineIo;
    use super::super::timeouts::Deadlines;
    use super::*;

    /// A reader that stops reading is cut off at the deadline; one that reads slowly is not.
    #[tokio::test]
    async fn a_stalled_reader_is_cut_off_and_a_slow_one_is_not() {
        let deadlines = Deadlines {
            write: Duration::from_millis(300),
            ..Deadlines::default()
        };
        let cuts = Arc::new(Mutex::new(Vec::new()));
        let seen = cuts.clone();
        let record: CutRecorder = Arc::new(move |cut| seen.lock().unwrap().push(cut));
        let (mut client, server) = tokio::io::duplex(1024);
        let mut writer = DeadlineIo::http2(server, deadlines, record);
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
        assert!(elapsed >= deadlines.write, "{elapsed:?}");
        assert!(elapsed < deadlines.write * 5, "{elapsed:?}");
        assert_eq!(*cuts.lock().unwrap(), [Cut::Write]);
        drop(client);
    }
}
