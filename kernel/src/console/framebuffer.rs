//! The screen console: a terminal (kernel/libs/vt) drawn on the bootloader's framebuffer, for
//! machines without a serial port.
//!
//! [`Screen`] keeps the terminal's character grid (log lines and terminal output both go
//! through its escape-sequence parser) and draws what changed into the framebuffer, each cell
//! [`vt::font::CELL_WIDTH`] by [`vt::font::CELL_HEIGHT`] pixels inside a border of
//! [`vt::font::BORDER`].
//!
//! Drawing is cheap except when the whole screen scrolls: then all its text is drawn again (the
//! picture is not moved: reading video memory back is slow on real machines and under QEMU),
//! which costs the same for one line as for many. So output that scrolled the screen is drawn
//! at once only if the last scroll was drawn at least [`SCROLL_DRAW_INTERVAL_NS`] ago;
//! otherwise it waits for the next write after that, or for the `screen` kernel thread
//! (`console::start_screen_refresh`), which draws pending changes that often. A megabyte of
//! short lines then redraws the screen five times a second, not once a line.
//!
//! Cells in the default colours with printable ASCII are copied from a cache of pixel rows
//! already in the framebuffer's format; others are shaded pixel by pixel.
//!
//! The console lock (console/mod.rs) protects the one [`Screen`].

use bootloader_api::info::{FrameBuffer, FrameBufferInfo, PixelFormat};
use vt::font::{BORDER, CELL_HEIGHT, CELL_WIDTH, Rgb};
use vt::{Attributes, Cell, Surface};

/// The most bytes of one pixel row of a cell (its width times at most 4 bytes a pixel).
const CELL_ROW_MAX: usize = CELL_WIDTH * 4;
/// The characters the pixel cache holds: printable ASCII.
const CACHED_FIRST: char = ' ';
const CACHED_COUNT: usize = 95;
/// How often, at most, scrolled output is drawn (5 times a second: under QEMU's TCG drawing a
/// screenful of text costs milliseconds).
pub const SCROLL_DRAW_INTERVAL_NS: u64 = 200_000_000;

/// Pixel rows of one cell in the framebuffer's format.
type CellPixels = [[u8; CELL_ROW_MAX]; CELL_HEIGHT];

/// The framebuffer and how to write its pixels.
struct Target {
    framebuffer: FrameBuffer,
    info: FrameBufferInfo,
}

/// The framebuffer with its cache of drawn cells.
struct Pixels {
    target: Target,
    /// Printable ASCII in the default colours, each made on first use.
    cache: [CellPixels; CACHED_COUNT],
    cached: [bool; CACHED_COUNT],
}

pub struct Screen {
    terminal: vt::Screen,
    pixels: Option<Pixels>,
    /// When output that scrolled the screen was last drawn (ns since boot).
    last_scroll_drawn: u64,
}

impl Screen {
    /// No screen yet: writes are dropped until [`Screen::attach`].
    pub const fn new() -> Self {
        Self {
            terminal: vt::Screen::new(1, 1),
            pixels: None,
            last_scroll_drawn: 0,
        }
    }

    /// Takes `framebuffer` as the screen, cleared; false (and no screen) for pixel formats it
    /// cannot draw or a framebuffer too small for one cell.
    pub fn attach(&mut self, mut framebuffer: FrameBuffer) -> bool {
        let info = framebuffer.info();
        let drawable = matches!(
            info.pixel_format,
            PixelFormat::Rgb | PixelFormat::Bgr | PixelFormat::U8
        ) && (1..=4).contains(&info.bytes_per_pixel)
            && info.width >= 2 * BORDER + CELL_WIDTH
            && info.height >= 2 * BORDER + CELL_HEIGHT;
        if !drawable {
            return false;
        }
        framebuffer.buffer_mut().fill(0);
        self.terminal.reset(
            (info.width - 2 * BORDER) / CELL_WIDTH,
            (info.height - 2 * BORDER) / CELL_HEIGHT,
        );
        self.pixels = Some(Pixels {
            target: Target { framebuffer, info },
            cache: [[[0; CELL_ROW_MAX]; CELL_HEIGHT]; CACHED_COUNT],
            cached: [false; CACHED_COUNT],
        });
        true
    }

    /// Stops drawing: what the screen shows stays, later output goes to the other devices.
    pub fn detach(&mut self) {
        self.pixels = None;
    }

    pub fn is_present(&self) -> bool {
        self.pixels.is_some()
    }

    /// The grid's size: columns and rows.
    pub fn size(&self) -> (usize, usize) {
        (self.terminal.columns(), self.terminal.rows())
    }

    /// Terminal output, exactly as the terminal's output processing made it.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        if self.pixels.is_some() {
            self.terminal.write(bytes);
            self.draw_if_due();
        }
    }

    /// A log line's text: each `\n` starts a new line at its first column.
    pub fn write_str(&mut self, text: &str) {
        if self.pixels.is_none() {
            return;
        }
        for line in text.split_inclusive('\n') {
            match line.strip_suffix('\n') {
                Some(line) => {
                    self.terminal.write(line.as_bytes());
                    self.terminal.write(b"\r\n");
                }
                None => self.terminal.write(line.as_bytes()),
            }
        }
        self.draw_if_due();
    }

    /// Draws the changes now, unless they scrolled the screen and the last scroll was drawn
    /// less than [`SCROLL_DRAW_INTERVAL_NS`] ago.
    fn draw_if_due(&mut self) {
        if self.terminal.scrolled_since_render() == 0 {
            self.draw();
            return;
        }
        let now = crate::time::now_ns();
        if now.saturating_sub(self.last_scroll_drawn) >= SCROLL_DRAW_INTERVAL_NS {
            self.last_scroll_drawn = now;
            self.draw();
        }
    }

    /// Draws every change not drawn yet.
    pub fn draw(&mut self) {
        if let Some(pixels) = &mut self.pixels
            && self.terminal.needs_render()
        {
            self.terminal.render(pixels);
        }
    }
}

impl Target {
    fn row_bytes(&self) -> usize {
        self.info.stride * self.info.bytes_per_pixel
    }

    /// A colour as the framebuffer stores it.
    fn encode(&self, [red, green, blue]: Rgb) -> [u8; 4] {
        match self.info.pixel_format {
            PixelFormat::Rgb => [red, green, blue, 0],
            PixelFormat::Bgr => [blue, green, red, 0],
            _ => {
                let grey = ((u16::from(red) + u16::from(green) + u16::from(blue)) / 3) as u8;
                [grey; 4]
            }
        }
    }

    /// The pixel rows of a cell (`row_len` bytes each used).
    fn cell_pixels(&self, cell: &Cell, cursor: bool, out: &mut CellPixels) {
        let bpp = self.info.bytes_per_pixel;
        vt::font::draw_cell(cell.character, &cell.attributes, cursor, |x, y, colour| {
            let encoded = self.encode(colour);
            out[y][x * bpp..(x + 1) * bpp].copy_from_slice(&encoded[..bpp]);
        });
    }

    /// Copies a cell's pixel rows to grid position (`row`, `column`).
    fn put_cell(&mut self, row: usize, column: usize, rows: &CellPixels) {
        let row_bytes = self.row_bytes();
        let bpp = self.info.bytes_per_pixel;
        let row_len = CELL_WIDTH * bpp;
        let start = (BORDER + row * CELL_HEIGHT) * row_bytes + (BORDER + column * CELL_WIDTH) * bpp;
        let buffer = self.framebuffer.buffer_mut();
        for (dy, pixels) in rows.iter().enumerate() {
            let at = start + dy * row_bytes;
            buffer[at..at + row_len].copy_from_slice(&pixels[..row_len]);
        }
    }
}

impl Surface for Pixels {
    fn draw_cells(&mut self, row: usize, column: usize, cells: &[Cell], cursor: Option<usize>) {
        let Pixels {
            target,
            cache,
            cached,
        } = self;
        let mut scratch = [[0; CELL_ROW_MAX]; CELL_HEIGHT];
        for (column, cell) in (column..).zip(cells) {
            let on_cursor = cursor == Some(column);
            let cached_index = (cell.attributes == Attributes::DEFAULT && !on_cursor)
                .then(|| (cell.character as usize).checked_sub(CACHED_FIRST as usize))
                .flatten()
                .filter(|&index| index < CACHED_COUNT);
            match cached_index {
                Some(index) => {
                    if !cached[index] {
                        target.cell_pixels(cell, false, &mut cache[index]);
                        cached[index] = true;
                    }
                    target.put_cell(row, column, &cache[index]);
                }
                None => {
                    target.cell_pixels(cell, on_cursor, &mut scratch);
                    target.put_cell(row, column, &scratch);
                }
            }
        }
    }
}
