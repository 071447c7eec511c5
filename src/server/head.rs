//! Where an HTTP/1.1 request head ends, byte by byte, as hyper's parser (httparse) decides it.
//!
//! The connection deadlines need to know when a head is complete without parsing it, and they
//! must agree with the parser exactly: a scanner that ends heads sooner than httparse leaves a
//! slow client under no deadline at all, and one that ends them later cuts off a client whose
//! request was already being answered. httparse
//! - skips empty lines (`\r\n` or a bare `\n`) before the request line,
//! - ends every line at `\n`, with or without a `\r` before it,
//! - ends the head at the first empty line after the request line.
//!
//! So `\r\n\r\n` alone is no head (two skipped empty lines), while `GET / HTTP/1.1\n\n` and
//! `GET / HTTP/1.1\r\nHost: x\r\n\n` are complete ones. A `\r` that httparse would reject (one not
//! followed by `\n`) is treated as line content here; hyper answers such a head 400 and closes.

/// Progress through a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeadScan {
    /// Only empty lines so far, which the parser skips; the request line has not begun.
    #[default]
    Leading,
    /// Inside a non-empty line (the request line or a header).
    InLine,
    /// At the start of a line that follows a non-empty one.
    LineStart,
    /// After a `\r` at the start of such a line.
    LineStartCr,
}

impl HeadScan {
    /// Advances over one byte; `None` once the head is complete (the byte ends it).
    pub fn feed(self, byte: u8) -> Option<Self> {
        Some(match (self, byte) {
            (Self::Leading, b'\r' | b'\n') => Self::Leading,
            (Self::InLine, b'\n') => Self::LineStart,
            (Self::LineStart, b'\r') => Self::LineStartCr,
            (Self::LineStart | Self::LineStartCr, b'\n') => return None,
            _ => Self::InLine,
        })
    }

    /// Advances over `bytes`; `Err(n)` when the head ends with the `n`th byte (1-based), the
    /// rest being body or the next request.
    pub fn feed_all(mut self, bytes: &[u8]) -> Result<Self, usize> {
        let mut at = 0;
        while let Some(rest) = bytes.get(at..).filter(|rest| !rest.is_empty()) {
            // Inside a line only its end changes anything: finding it beats stepping through a
            // state machine byte by byte (a tenth of the instructions on every request head).
            let skipped = match self {
                Self::InLine => match rest.iter().position(|&byte| byte == b'\n') {
                    Some(skipped) => skipped,
                    None => return Ok(self),
                },
                _ => 0,
            };
            at += skipped;
            let byte = rest.get(skipped).copied().unwrap_or_default();
            self = self.feed(byte).ok_or(at + 1)?;
            at += 1;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the head ends in `text` (its length), or `None` if it has not.
    fn end(text: &[u8]) -> Option<usize> {
        HeadScan::default().feed_all(text).err()
    }

    #[test]
    fn heads_end_where_httparse_ends_them() {
        let cases: [(&[u8], Option<usize>); 14] = [
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", Some(27)),
            (b"GET / HTTP/1.1\r\n\r\nbody", Some(18)),
            // Bare line feeds, in any mix with CRLF.
            (b"GET / HTTP/1.1\n\n", Some(16)),
            (b"GET / HTTP/1.1\nHost: x\n\n", Some(24)),
            (b"GET / HTTP/1.1\r\nHost: x\r\n\n", Some(26)),
            (b"GET / HTTP/1.1\nHost: x\n\r\n", Some(25)),
            // Leading empty lines are skipped, not taken for the end of a head.
            (b"\r\n\r\n", None),
            (b"\n\n\n", None),
            (b"\r\n\nGET / HTTP/1.1\r\n\r\n", Some(21)),
            (b"\n\r\nGET / HTTP/1.1\n\n", Some(19)),
            // Incomplete heads.
            (b"GET / HTTP/1.1\r\nHost: x\r\n", None),
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r", None),
            (b"GET / HTTP/1.1\r\nHost: x\r", None),
            // A carriage return inside a line does not end it.
            (b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", Some(26)),
        ];
        for (text, want) in cases {
            assert_eq!(end(text), want, "{:?}", String::from_utf8_lossy(text));
            assert_eq!(
                byte_by_byte(text),
                want,
                "{:?}",
                String::from_utf8_lossy(text)
            );
            // Split into two reads anywhere, the head ends at the same byte.
            for split in 0..=text.len() {
                let (first, second) = text.split_at(split);
                let split_end = match HeadScan::default().feed_all(first) {
                    Err(n) => Some(n),
                    Ok(scan) => scan.feed_all(second).err().map(|n| split + n),
                };
                assert_eq!(
                    split_end,
                    want,
                    "{:?} at {split}",
                    String::from_utf8_lossy(text)
                );
            }
        }
    }

    /// Where the head ends, one [`HeadScan::feed`] at a time.
    fn byte_by_byte(text: &[u8]) -> Option<usize> {
        let mut scan = HeadScan::default();
        for (index, &byte) in text.iter().enumerate() {
            scan = match scan.feed(byte) {
                Some(next) => next,
                None => return Some(index + 1),
            };
        }
        None
    }

    /// The same verdicts whatever the reads' boundaries.
    #[test]
    fn byte_at_a_time_agrees_with_whole_reads() {
        let text = b"\r\nPOST /x HTTP/1.1\nContent-Length: 2\r\n\nab";
        let whole = end(text);
        assert_eq!(byte_by_byte(text), whole);
        assert_eq!(whole, Some(text.len() - 2));
    }
}
