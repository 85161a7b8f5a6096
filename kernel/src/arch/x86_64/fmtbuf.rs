//! A fixed-capacity text buffer for reports built where allocating is not allowed (trap and
//! panic paths). Text beyond the capacity is dropped at a character boundary.

use core::fmt;

#[derive(Clone)]
pub struct FmtBuffer<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> FmtBuffer<N> {
    pub const fn new() -> Self {
        Self {
            bytes: [0; N],
            len: 0,
        }
    }

    pub fn as_str(&self) -> &str {
        // Only whole `&str`s (or their char-boundary prefixes) are ever copied in.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("<invalid utf-8>")
    }
}

impl<const N: usize> fmt::Write for FmtBuffer<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}
