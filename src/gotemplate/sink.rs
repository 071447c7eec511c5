//! A string that refuses to grow past a byte limit. Every write is checked before it allocates,
//! so a template asking for a ten-million-character padding gets an error, not the allocation.

/// The limit would be exceeded; nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget;

pub struct Sink {
    buf: String,
    limit: usize,
}

impl Sink {
    pub fn new(limit: usize) -> Self {
        Self {
            buf: String::new(),
            limit,
        }
    }

    /// Bytes that may still be written.
    pub fn room(&self) -> usize {
        self.limit.saturating_sub(self.buf.len())
    }

    /// Fails unless `n` more bytes fit.
    pub fn ensure(&self, n: usize) -> Result<(), OverBudget> {
        if n <= self.room() {
            Ok(())
        } else {
            Err(OverBudget)
        }
    }

    pub fn push_str(&mut self, s: &str) -> Result<(), OverBudget> {
        self.ensure(s.len())?;
        self.buf.push_str(s);
        Ok(())
    }

    pub fn push(&mut self, c: char) -> Result<(), OverBudget> {
        self.ensure(c.len_utf8())?;
        self.buf.push(c);
        Ok(())
    }

    /// `n` copies of an ASCII byte (padding, zeros).
    pub fn repeat(&mut self, byte: u8, n: usize) -> Result<(), OverBudget> {
        self.ensure(n)?;
        self.buf.extend(std::iter::repeat_n(char::from(byte), n));
        Ok(())
    }

    pub fn into_string(self) -> String {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_stop_at_the_limit_without_partial_output() {
        let mut sink = Sink::new(5);
        sink.push_str("abc").unwrap();
        assert_eq!(sink.push_str("def"), Err(OverBudget));
        assert_eq!(sink.repeat(b' ', usize::MAX), Err(OverBudget));
        sink.repeat(b'0', 2).unwrap();
        assert_eq!(sink.push('é'), Err(OverBudget));
        assert_eq!(sink.room(), 0);
        assert_eq!(sink.into_string(), "abc00");
    }
}
