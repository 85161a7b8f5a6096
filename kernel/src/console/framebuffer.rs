//! A text console on the bootloader's framebuffer, for machines without a serial port.
//!
//! Draws Noto Sans Mono glyphs (pre-rasterised, 8-bit intensities) in light grey on black,
//! wraps long lines and scrolls by moving the pixel rows up half a screen at a time.
//!
//! Printable ASCII is drawn from a cache of glyphs already in the framebuffer's pixel format
//! (row by row, one copy each), since computing every pixel of every character made the
//! screen three times slower than the serial line under QEMU.

use bootloader_api::info::{FrameBuffer, FrameBufferInfo, PixelFormat};
use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster, get_raster_width};

const WEIGHT: FontWeight = FontWeight::Regular;
const HEIGHT: RasterHeight = RasterHeight::Size16;
const LINE_SPACING: usize = 2;
const BORDER: usize = 4;
/// Pixel rows of a glyph.
const GLYPH_ROWS: usize = HEIGHT.val();
/// The most bytes of one pixel row of a glyph (its width times the bytes per pixel).
const GLYPH_ROW_MAX: usize = 64;
/// The characters the glyph cache holds: printable ASCII.
const CACHED_FIRST: char = ' ';
const CACHED_COUNT: usize = 95;

/// Printable ASCII glyphs in the framebuffer's pixel format, each drawn on first use. Only the
/// console's one [`Screen`] uses it, under the console lock.
static GLYPH_CACHE: spin::Mutex<GlyphCache> = spin::Mutex::new(GlyphCache {
    rows: [[[0; GLYPH_ROW_MAX]; GLYPH_ROWS]; CACHED_COUNT],
    ready: [false; CACHED_COUNT],
});

struct GlyphCache {
    rows: [[[u8; GLYPH_ROW_MAX]; GLYPH_ROWS]; CACHED_COUNT],
    ready: [bool; CACHED_COUNT],
}

pub struct Screen {
    framebuffer: FrameBuffer,
    info: FrameBufferInfo,
    x: usize,
    y: usize,
    /// User output arrives in pieces cut anywhere, even inside a character.
    decoder: Utf8Stream,
}

impl Screen {
    /// A console on `framebuffer`, or None for pixel formats it cannot draw.
    pub fn new(mut framebuffer: FrameBuffer) -> Option<Self> {
        let info = framebuffer.info();
        let drawable = matches!(
            info.pixel_format,
            PixelFormat::Rgb | PixelFormat::Bgr | PixelFormat::U8
        ) && info.bytes_per_pixel >= 1
            && get_raster_width(WEIGHT, HEIGHT) * info.bytes_per_pixel <= GLYPH_ROW_MAX
            && info.width > 2 * BORDER + get_raster_width(WEIGHT, HEIGHT);
        if !drawable {
            return None;
        }
        framebuffer.buffer_mut().fill(0);
        Some(Self {
            framebuffer,
            info,
            x: BORDER,
            y: BORDER,
            decoder: Utf8Stream::default(),
        })
    }

    /// Draws bytes as UTF-8, continuing a character the previous call ended inside of; bytes
    /// that are not UTF-8 show as U+FFFD.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        let mut decoder = core::mem::take(&mut self.decoder);
        decoder.decode(bytes, |text| self.write_str(text));
        self.decoder = decoder;
    }

    pub fn write_str(&mut self, s: &str) {
        for c in s.chars() {
            match c {
                '\n' => self.newline(),
                '\r' => self.x = BORDER,
                // Backspace (the terminal's erase echoes it): one character to the left.
                '\u{8}' => {
                    self.x = self
                        .x
                        .saturating_sub(get_raster_width(WEIGHT, HEIGHT))
                        .max(BORDER)
                }
                c => self.write_char(c),
            }
        }
    }

    fn line_height() -> usize {
        HEIGHT.val() + LINE_SPACING
    }

    fn newline(&mut self) {
        self.x = BORDER;
        self.y += Self::line_height();
        if self.y + Self::line_height() + BORDER > self.info.height {
            self.scroll();
        }
    }

    /// Moves the text up by half a screen and clears what that frees at the bottom. Moving the
    /// whole framebuffer costs the same for one line as for many (megabytes, read back from
    /// video memory on real machines), so it is done once per half screen of output rather
    /// than once per line: a megabyte of short lines scrolls hundreds of times, not tens of
    /// thousands.
    fn scroll(&mut self) {
        let lines_on_screen = (self.info.height - 2 * BORDER) / Self::line_height();
        let lines = (lines_on_screen / 2).max(1);
        let row_bytes = self.info.stride * self.info.bytes_per_pixel;
        let shift = (lines * Self::line_height()).min(self.y) * row_bytes;
        let used = self.info.height * row_bytes;
        let buffer = self.framebuffer.buffer_mut();
        buffer.copy_within(shift..used, 0);
        buffer[used - shift..used].fill(0);
        self.y -= shift / row_bytes;
    }

    fn write_char(&mut self, c: char) {
        let width = get_raster_width(WEIGHT, HEIGHT);
        if self.x + width + BORDER > self.info.width {
            self.newline();
        }
        let row_len = width * self.info.bytes_per_pixel;
        let cached = (c as usize)
            .checked_sub(CACHED_FIRST as usize)
            .filter(|&index| index < CACHED_COUNT);
        match cached {
            Some(index) => {
                let mut cache = GLYPH_CACHE.lock();
                if !cache.ready[index] {
                    self.render(c, &mut cache.rows[index]);
                    cache.ready[index] = true;
                }
                self.draw(&cache.rows[index], row_len);
            }
            None => {
                let mut rows = [[0; GLYPH_ROW_MAX]; GLYPH_ROWS];
                self.render(c, &mut rows);
                self.draw(&rows, row_len);
            }
        }
        self.x += width;
    }

    /// Renders `c` (or `?` for a character the font lacks) into pixel rows in the
    /// framebuffer's format.
    fn render(&self, c: char, rows: &mut [[u8; GLYPH_ROW_MAX]; GLYPH_ROWS]) {
        let glyph = get_raster(c, WEIGHT, HEIGHT)
            .unwrap_or_else(|| get_raster('?', WEIGHT, HEIGHT).expect("'?' is in every font"));
        let bpp = self.info.bytes_per_pixel;
        let colour_bytes = match self.info.pixel_format {
            PixelFormat::Rgb | PixelFormat::Bgr => 3.min(bpp),
            _ => 1,
        };
        for (out, row) in rows.iter_mut().zip(glyph.rows()) {
            for (pixel, &intensity) in out.chunks_exact_mut(bpp).zip(row) {
                // Light grey rather than white: easier on the eyes on a large screen.
                let level = (u16::from(intensity) * 0xd0 / 0xff) as u8;
                pixel[..colour_bytes].fill(level);
            }
        }
    }

    /// Copies rendered pixel rows (`row_len` bytes each) to the cursor.
    fn draw(&mut self, rows: &[[u8; GLYPH_ROW_MAX]; GLYPH_ROWS], row_len: usize) {
        let row_bytes = self.info.stride * self.info.bytes_per_pixel;
        let start = self.y * row_bytes + self.x * self.info.bytes_per_pixel;
        let buffer = self.framebuffer.buffer_mut();
        for (dy, row) in rows.iter().enumerate() {
            let at = start + dy * row_bytes;
            buffer[at..at + row_len].copy_from_slice(&row[..row_len]);
        }
    }
}

/// Decodes UTF-8 that arrives in pieces: a character cut between two pieces is kept until the
/// rest of it arrives; bytes that can never be UTF-8 become U+FFFD.
#[derive(Default)]
struct Utf8Stream {
    /// The start of a character the last piece ended inside of.
    held: [u8; 4],
    held_len: usize,
}

impl Utf8Stream {
    /// Decodes `bytes`, handing the text to `out` in order.
    pub fn decode(&mut self, bytes: &[u8], mut out: impl FnMut(&str)) {
        self.decode_into(bytes, &mut out);
    }

    fn decode_into(&mut self, mut bytes: &[u8], out: &mut dyn FnMut(&str)) {
        // Finish the held character first, a byte at a time.
        while self.held_len > 0 && !bytes.is_empty() {
            self.held[self.held_len] = bytes[0];
            self.held_len += 1;
            bytes = &bytes[1..];
            let held = self.held;
            match core::str::from_utf8(&held[..self.held_len]) {
                Ok(text) => {
                    self.held_len = 0;
                    out(text);
                }
                Err(e) => match e.error_len() {
                    None => {}
                    Some(invalid) => {
                        // Not a character after all: one replacement for the bytes that
                        // cannot start one, then the rest is read again.
                        let len = self.held_len;
                        self.held_len = 0;
                        out("\u{fffd}");
                        self.decode_into(&held[invalid..len], out);
                    }
                },
            }
        }
        for chunk in bytes.utf8_chunks() {
            out(chunk.valid());
            let invalid = chunk.invalid();
            if invalid.is_empty() {
                continue;
            }
            let cut_by_the_end = invalid.as_ptr_range().end == bytes.as_ptr_range().end
                && core::str::from_utf8(invalid).is_err_and(|e| e.error_len().is_none());
            if cut_by_the_end {
                self.held[..invalid.len()].copy_from_slice(invalid);
                self.held_len = invalid.len();
            } else {
                out("\u{fffd}");
            }
        }
    }
}

#[cfg(feature = "ktest")]
mod ktests {
    use alloc::string::String;

    use super::Utf8Stream;
    use crate::ktest;

    fn decode_in_pieces(pieces: &[&[u8]]) -> String {
        let mut stream = Utf8Stream::default();
        let mut text = String::new();
        for piece in pieces {
            stream.decode(piece, |t| text.push_str(t));
        }
        text
    }

    ktest! {
        /// The screen shows user output right however the console cut it: a character split
        /// between pieces is drawn once whole, bytes that are not UTF-8 as U+FFFD.
        fn utf8_stream_joins_characters_cut_between_pieces() {
            let euro = "€".as_bytes();
            assert_eq!(decode_in_pieces(&[b"a", &euro[..1], &euro[1..], b"b"]), "a€b");
            assert_eq!(decode_in_pieces(&[&euro[..1], &euro[1..2], &euro[2..]]), "€");
            assert_eq!(decode_in_pieces(&[b"x\xff", b"y"]), "x\u{fffd}y");
            // A cut sequence that the next piece does not continue.
            assert_eq!(decode_in_pieces(&[&euro[..2], b"z"]), "\u{fffd}z");
            assert_eq!(decode_in_pieces(&[&euro[..1], &euro[..1], &euro[1..]]), "\u{fffd}€");
        }
    }
}
