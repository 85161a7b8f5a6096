//! A text console on the bootloader's framebuffer, for machines without a serial port.
//!
//! Draws Noto Sans Mono glyphs (pre-rasterised, 8-bit intensities) in light grey on black,
//! wraps long lines and scrolls by moving the pixel rows up one text line.

use bootloader_api::info::{FrameBuffer, FrameBufferInfo, PixelFormat};
use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster, get_raster_width};

const WEIGHT: FontWeight = FontWeight::Regular;
const HEIGHT: RasterHeight = RasterHeight::Size16;
const LINE_SPACING: usize = 2;
const BORDER: usize = 4;

pub struct Screen {
    framebuffer: FrameBuffer,
    info: FrameBufferInfo,
    x: usize,
    y: usize,
}

impl Screen {
    /// A console on `framebuffer`, or None for pixel formats it cannot draw.
    pub fn new(mut framebuffer: FrameBuffer) -> Option<Self> {
        let info = framebuffer.info();
        let drawable = matches!(
            info.pixel_format,
            PixelFormat::Rgb | PixelFormat::Bgr | PixelFormat::U8
        ) && info.bytes_per_pixel >= 1
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
        })
    }

    pub fn write_str(&mut self, s: &str) {
        for c in s.chars() {
            match c {
                '\n' => self.newline(),
                '\r' => self.x = BORDER,
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

    /// Moves every pixel row up by one text line and clears the freed bottom line.
    fn scroll(&mut self) {
        let row_bytes = self.info.stride * self.info.bytes_per_pixel;
        let shift = Self::line_height() * row_bytes;
        let used = self.info.height * row_bytes;
        let buffer = self.framebuffer.buffer_mut();
        buffer.copy_within(shift..used, 0);
        buffer[used - shift..used].fill(0);
        self.y -= Self::line_height();
    }

    fn write_char(&mut self, c: char) {
        let width = get_raster_width(WEIGHT, HEIGHT);
        if self.x + width + BORDER > self.info.width {
            self.newline();
        }
        let glyph = get_raster(c, WEIGHT, HEIGHT)
            .unwrap_or_else(|| get_raster('?', WEIGHT, HEIGHT).expect("'?' is in every font"));
        for (dy, row) in glyph.rows().enumerate() {
            for (dx, &intensity) in row.iter().enumerate() {
                self.put_pixel(self.x + dx, self.y + dy, intensity);
            }
        }
        self.x += glyph.width();
    }

    fn put_pixel(&mut self, x: usize, y: usize, intensity: u8) {
        let bpp = self.info.bytes_per_pixel;
        let offset = (y * self.info.stride + x) * bpp;
        // Light grey rather than white: easier on the eyes on a large screen.
        let level = (u16::from(intensity) * 0xd0 / 0xff) as u8;
        let pixel = &mut self.framebuffer.buffer_mut()[offset..offset + bpp];
        match self.info.pixel_format {
            PixelFormat::Rgb | PixelFormat::Bgr => {
                pixel[..3.min(bpp)].fill(level);
            }
            _ => pixel[0] = level,
        }
    }
}
