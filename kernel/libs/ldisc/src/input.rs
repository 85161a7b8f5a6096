//! The input queue of a [`LineDiscipline`](crate::LineDiscipline), owned by it: a ring of [`CAPACITY`] bytes that holds, in order, the input nobody has read
//! yet. Three positions divide it:
//!
//! ```text
//!   tail ........ line_end ......... head
//!   |  complete lines  |  line being edited  |
//! ```
//!
//! In canonical mode `tail..line_end` holds complete lines, each ending with a terminator byte
//! marked in `line_ends`; an end-of-file terminator is also marked in `eof_markers` and is never
//! handed to a reader. `line_end..head` is the line still being edited. In non-canonical mode
//! every byte in `tail..head` is readable and `line_end` means nothing.
//!
//! Positions count bytes since creation (wrapping); a position's slot is the count modulo
//! [`CAPACITY`], so `head - tail` is the number of bytes held. The marks of a slot are cleared
//! whenever a byte is pushed into it, so stale marks from earlier trips round the ring never
//! survive into live bytes.

/// Bytes the queue holds, as Linux's `N_TTY_BUF_SIZE`.
pub const CAPACITY: usize = 4096;

/// One bit per slot of the ring.
struct SlotBits([u64; CAPACITY / 64]);

impl SlotBits {
    const fn new() -> Self {
        Self([0; CAPACITY / 64])
    }

    fn get(&self, slot: usize) -> bool {
        self.0[slot / 64] & (1 << (slot % 64)) != 0
    }

    fn assign(&mut self, slot: usize, value: bool) {
        let bit = 1 << (slot % 64);
        if value {
            self.0[slot / 64] |= bit;
        } else {
            self.0[slot / 64] &= !bit;
        }
    }

    fn clear_all(&mut self) {
        self.0 = [0; CAPACITY / 64];
    }
}

/// The first complete line of the queue.
pub struct Line {
    /// Bytes to hand to a reader: the line with its terminator, or without it for end of file.
    pub data_len: usize,
    /// Bytes the line occupies, terminator included.
    pub stored_len: usize,
}

pub struct InputQueue {
    bytes: [u8; CAPACITY],
    line_ends: SlotBits,
    eof_markers: SlotBits,
    tail: usize,
    line_end: usize,
    head: usize,
}

const fn slot(position: usize) -> usize {
    position % CAPACITY
}

impl InputQueue {
    pub const fn new() -> Self {
        Self {
            bytes: [0; CAPACITY],
            line_ends: SlotBits::new(),
            eof_markers: SlotBits::new(),
            tail: 0,
            line_end: 0,
            head: 0,
        }
    }

    /// Bytes held: unread lines and the line being edited (or all input, non-canonical).
    pub fn len(&self) -> usize {
        self.head.wrapping_sub(self.tail)
    }

    /// Bytes of complete lines (canonical mode), terminators included.
    pub fn complete_len(&self) -> usize {
        self.line_end.wrapping_sub(self.tail)
    }

    /// Bytes of the line being edited (canonical mode).
    pub fn editing_len(&self) -> usize {
        self.head.wrapping_sub(self.line_end)
    }

    /// The byte `index` bytes into the line being edited.
    pub fn editing_byte(&self, index: usize) -> u8 {
        self.bytes[slot(self.line_end.wrapping_add(index))]
    }

    /// Appends `byte` (the caller has checked for room).
    pub fn push(&mut self, byte: u8) {
        let at = slot(self.head);
        self.bytes[at] = byte;
        self.line_ends.assign(at, false);
        self.eof_markers.assign(at, false);
        self.head = self.head.wrapping_add(1);
    }

    /// Appends `terminator` and completes the line being edited with it; an end-of-file
    /// terminator is kept out of what readers get.
    pub fn push_line_end(&mut self, terminator: u8, end_of_file: bool) {
        self.push(terminator);
        let at = slot(self.head.wrapping_sub(1));
        self.line_ends.assign(at, true);
        self.eof_markers.assign(at, end_of_file);
        self.line_end = self.head;
    }

    /// Shortens the line being edited to `len` bytes.
    pub fn truncate_editing(&mut self, len: usize) {
        debug_assert!(len <= self.editing_len());
        self.head = self.line_end.wrapping_add(len);
    }

    /// Forgets every line mark: all bytes held become plain data (a switch of mode). With
    /// `complete_all`, what is held becomes one complete line (the switch to canonical mode);
    /// without, there are no complete lines.
    pub fn remark(&mut self, complete_all: bool) {
        self.line_ends.clear_all();
        self.eof_markers.clear_all();
        if complete_all && self.len() > 0 {
            self.line_ends.assign(slot(self.head.wrapping_sub(1)), true);
            self.line_end = self.head;
        } else {
            self.line_end = self.tail;
        }
    }

    /// Drops everything held.
    pub fn clear(&mut self) {
        self.tail = self.head;
        self.line_end = self.head;
    }

    /// The first complete line (canonical mode), if there is one.
    pub fn first_line(&self) -> Option<Line> {
        (0..self.complete_len()).find_map(|offset| {
            let at = slot(self.tail.wrapping_add(offset));
            self.line_ends.get(at).then(|| Line {
                data_len: if self.eof_markers.get(at) {
                    offset
                } else {
                    offset + 1
                },
                stored_len: offset + 1,
            })
        })
    }

    /// Bytes of complete lines a reader would get (canonical mode): terminators that mark end
    /// of file do not count.
    pub fn complete_data_len(&self) -> usize {
        let markers = (0..self.complete_len())
            .filter(|&offset| self.eof_markers.get(slot(self.tail.wrapping_add(offset))))
            .count();
        self.complete_len() - markers
    }

    /// Copies the first `out.len()` bytes into `out` without removing them.
    pub fn peek(&self, out: &mut [u8]) {
        debug_assert!(out.len() <= self.len());
        let start = slot(self.tail);
        let first = out.len().min(CAPACITY - start);
        let (before_wrap, after_wrap) = out.split_at_mut(first);
        before_wrap.copy_from_slice(&self.bytes[start..start + first]);
        after_wrap.copy_from_slice(&self.bytes[..after_wrap.len()]);
    }

    /// Removes the first `count` bytes.
    pub fn consume(&mut self, count: usize) {
        debug_assert!(count <= self.len());
        self.tail = self.tail.wrapping_add(count);
        if self.complete_len() > self.len() {
            // Non-canonical reads pass the (meaningless) end of complete lines.
            self.line_end = self.tail;
        }
    }
}
