//! The character grid of a terminal and what the parser's actions do to it, as a Linux virtual
//! terminal does them.
//!
//! Rows are kept in a ring, so that scrolling the whole screen moves no cells. Printing at the
//! last column leaves the cursor there with a wrap pending: the next character goes to the
//! start of the next line (scrolling if needed), as on a VT100 with auto-wrap. Erasing fills
//! with blanks in the current background colour.
//!
//! For the renderer, the screen remembers which cells of each row changed (one span a row),
//! whether the whole screen scrolled since [`Screen::render`] last ran, where it drew the
//! cursor, and how far into each row the picture may show more than blanks, so that drawing
//! costs what changed, not the screen's size. A scroll is drawn by drawing the text again, not
//! by moving the picture: reading video memory back is slow on real machines and under QEMU,
//! and the text is usually much smaller than the screen.

use crate::parser::{Action, ControlSequence, Parser};

/// The widest grid kept; a wider screen shows this many columns.
pub const MAX_COLUMNS: usize = 256;
/// The tallest grid kept.
pub const MAX_ROWS: usize = 100;

/// The colour a cell shows its character in when nothing chose one (light grey).
pub const DEFAULT_FOREGROUND: u8 = 7;
/// The colour behind it (black).
pub const DEFAULT_BACKGROUND: u8 = 0;
const TAB_STOP: usize = 8;

/// How a cell is drawn: SGR's choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attributes {
    /// Index into [`crate::font::PALETTE`] (0-15).
    pub foreground: u8,
    /// Index into [`crate::font::PALETTE`] (0-15).
    pub background: u8,
    pub bold: bool,
    pub underline: bool,
    pub reverse: bool,
}

impl Attributes {
    pub const DEFAULT: Self = Self {
        foreground: DEFAULT_FOREGROUND,
        background: DEFAULT_BACKGROUND,
        bold: false,
        underline: false,
        reverse: false,
    };
}

/// One character position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub character: char,
    pub attributes: Attributes,
}

impl Cell {
    pub const BLANK: Self = Self {
        character: ' ',
        attributes: Attributes::DEFAULT,
    };
}

/// What draws the screen: a framebuffer in the kernel, a test's record on the host.
pub trait Surface {
    /// Draws `cells` at grid row `row` from column `column` on; `cursor` is the column to show
    /// the cursor at, if it is on this row.
    fn draw_cells(&mut self, row: usize, column: usize, cells: &[Cell], cursor: Option<usize>);
}

/// The columns of a row that changed since the last render: `start..end`, empty when equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u16,
    end: u16,
}

impl Span {
    const NONE: Self = Self { start: 0, end: 0 };
    const ALL: Self = Self {
        start: 0,
        end: MAX_COLUMNS as u16,
    };

    fn is_empty(self) -> bool {
        self.start >= self.end
    }

    /// Adds columns `from..to`.
    fn add(&mut self, from: usize, to: usize) {
        let (from, to) = (from as u16, to as u16);
        if from >= to {
            return;
        }
        if self.is_empty() {
            *self = Self {
                start: from,
                end: to,
            };
        } else {
            self.start = self.start.min(from);
            self.end = self.end.max(to);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SavedCursor {
    row: usize,
    column: usize,
    attributes: Attributes,
}

/// One terminal screen. See the module documentation.
pub struct Screen {
    cells: [Cell; MAX_COLUMNS * MAX_ROWS],
    columns: usize,
    rows: usize,
    /// The ring slot that holds screen row 0.
    first_row: usize,
    row: usize,
    column: usize,
    /// The last column was printed at: the next character wraps first.
    wrap_pending: bool,
    attributes: Attributes,
    saved: SavedCursor,
    cursor_visible: bool,
    /// The scroll region, first and last row (inclusive).
    region_top: usize,
    region_bottom: usize,
    parser: Parser,
    dirty: [Span; MAX_ROWS],
    /// Lines the whole screen scrolled since the last render.
    scrolled: usize,
    /// Where the last render drew the cursor.
    drawn_cursor: Option<(usize, usize)>,
    /// For each row of the picture, the columns before which it may show something other than
    /// default blanks (the screen's text, a coloured blank, the cursor).
    picture_extent: [u16; MAX_ROWS],
}

impl Screen {
    /// A screen of `columns` by `rows` (at most [`MAX_COLUMNS`] by [`MAX_ROWS`], at least 1 by
    /// 1), blank, cursor at the top left.
    pub const fn new(columns: usize, rows: usize) -> Self {
        let columns = clamp(columns, MAX_COLUMNS);
        let rows = clamp(rows, MAX_ROWS);
        Self {
            cells: [Cell::BLANK; MAX_COLUMNS * MAX_ROWS],
            columns,
            rows,
            first_row: 0,
            row: 0,
            column: 0,
            wrap_pending: false,
            attributes: Attributes::DEFAULT,
            saved: SavedCursor {
                row: 0,
                column: 0,
                attributes: Attributes::DEFAULT,
            },
            cursor_visible: true,
            region_top: 0,
            region_bottom: rows - 1,
            parser: Parser::new(),
            dirty: [Span::ALL; MAX_ROWS],
            scrolled: 0,
            drawn_cursor: None,
            picture_extent: [MAX_COLUMNS as u16; MAX_ROWS],
        }
    }

    /// Makes this a blank screen of `columns` by `rows`, in place (the screen is large).
    pub fn reset(&mut self, columns: usize, rows: usize) {
        self.columns = clamp(columns, MAX_COLUMNS);
        self.rows = clamp(rows, MAX_ROWS);
        self.cells.fill(Cell::BLANK);
        self.first_row = 0;
        self.row = 0;
        self.column = 0;
        self.wrap_pending = false;
        self.attributes = Attributes::DEFAULT;
        self.saved = SavedCursor {
            row: 0,
            column: 0,
            attributes: Attributes::DEFAULT,
        };
        self.cursor_visible = true;
        self.region_top = 0;
        self.region_bottom = self.rows - 1;
        self.parser = Parser::new();
        self.dirty = [Span::ALL; MAX_ROWS];
        self.scrolled = 0;
        self.drawn_cursor = None;
        self.picture_extent = [MAX_COLUMNS as u16; MAX_ROWS];
    }

    pub fn columns(&self) -> usize {
        self.columns
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    #[cfg(test)]
    /// The cursor's row and column.
    pub fn cursor(&self) -> (usize, usize) {
        (self.row, self.column)
    }

    #[cfg(test)]
    pub fn cursor_visible(&self) -> bool {
        self.cursor_visible
    }

    /// The cells of screen row `row`.
    pub fn row_cells(&self, row: usize) -> &[Cell] {
        let start = self.slot(row) * MAX_COLUMNS;
        &self.cells[start..start + self.columns]
    }

    #[cfg(test)]
    /// Row `row`'s characters, trailing blanks removed (for the tests).
    pub fn row_text(&self, row: usize) -> RowText<'_> {
        RowText(self.row_cells(row))
    }

    /// Whether [`Screen::render`] has anything to draw.
    pub fn needs_render(&self) -> bool {
        self.scrolled > 0
            || self.dirty[..self.rows].iter().any(|span| !span.is_empty())
            || self.drawn_cursor != self.cursor_to_draw()
    }

    /// Lines the whole screen scrolled since the last render (the costly part of drawing it:
    /// all its text is drawn again).
    pub fn scrolled_since_render(&self) -> usize {
        self.scrolled
    }

    /// The columns of row `row` before its last cell that is not a default blank.
    fn content_extent(&self, row: usize) -> usize {
        self.row_cells(row)
            .iter()
            .rposition(|cell| *cell != Cell::BLANK)
            .map_or(0, |last| last + 1)
    }

    /// Writes terminal output: text, control characters and escape sequences.
    pub fn write(&mut self, bytes: &[u8]) {
        let mut parser = self.parser;
        parser.feed(bytes, &mut |action| self.act(action));
        self.parser = parser;
    }

    /// Brings `surface` up to date: draws the cells that changed and the cursor; after a
    /// whole-screen scroll, every row's text (and what the picture showed beyond it) again.
    pub fn render(&mut self, surface: &mut impl Surface) {
        if self.scrolled > 0 {
            for row in 0..self.rows {
                let extent = usize::from(self.picture_extent[row]).max(self.content_extent(row));
                self.dirty[row] = Span::NONE;
                self.dirty[row].add(0, extent);
            }
        }
        self.scrolled = 0;
        let cursor = self.cursor_to_draw();
        if self.drawn_cursor != cursor {
            for &(row, column) in self.drawn_cursor.iter().chain(cursor.iter()) {
                self.dirty[row].add(column, column + 1);
            }
        }
        for row in 0..self.rows {
            let span = core::mem::replace(&mut self.dirty[row], Span::NONE);
            let start = usize::from(span.start);
            let end = usize::from(span.end).min(self.columns);
            if start < end {
                let at = cursor.filter(|&(r, _)| r == row).map(|(_, column)| column);
                surface.draw_cells(row, start, &self.row_cells(row)[start..end], at);
                let drawn = self.content_extent(row).min(end);
                let old = usize::from(self.picture_extent[row]).min(self.columns);
                let mut extent = if start == 0 && end >= old {
                    drawn
                } else {
                    old.max(drawn)
                };
                if let Some(column) = at {
                    extent = extent.max(column + 1);
                }
                self.picture_extent[row] = extent as u16;
            }
        }
        self.drawn_cursor = cursor;
    }

    fn cursor_to_draw(&self) -> Option<(usize, usize)> {
        self.cursor_visible.then_some((self.row, self.column))
    }

    fn slot(&self, row: usize) -> usize {
        (self.first_row + row) % self.rows
    }

    fn cell_mut(&mut self, row: usize, column: usize) -> &mut Cell {
        let index = self.slot(row) * MAX_COLUMNS + column;
        &mut self.cells[index]
    }

    /// A blank in the current background colour.
    fn blank(&self) -> Cell {
        Cell {
            character: ' ',
            attributes: Attributes {
                background: self.attributes.background,
                ..Attributes::DEFAULT
            },
        }
    }

    /// Blanks columns `from..to` of `row`.
    fn erase(&mut self, row: usize, from: usize, to: usize) {
        let blank = self.blank();
        let start = self.slot(row) * MAX_COLUMNS;
        let to = to.min(self.columns);
        self.cells[start + from..start + to].fill(blank);
        self.dirty[row].add(from, to);
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Print(character) => self.print(character),
            Action::Control(byte) => self.control(byte),
            Action::Escape(byte) => self.escape(byte),
            Action::Csi(sequence) => self.csi(&sequence),
        }
    }

    fn print(&mut self, character: char) {
        if self.wrap_pending {
            self.wrap_pending = false;
            self.column = 0;
            self.line_feed();
        }
        let cell = Cell {
            character,
            attributes: self.attributes,
        };
        *self.cell_mut(self.row, self.column) = cell;
        self.dirty[self.row].add(self.column, self.column + 1);
        if self.column + 1 == self.columns {
            self.wrap_pending = true;
        } else {
            self.column += 1;
        }
    }

    fn control(&mut self, byte: u8) {
        match byte {
            b'\r' => self.move_to(self.row, 0),
            b'\n' | 0x0b | 0x0c => {
                self.wrap_pending = false;
                self.line_feed();
            }
            0x08 => self.move_to(self.row, self.column.saturating_sub(1)),
            b'\t' => {
                let next = (self.column / TAB_STOP + 1) * TAB_STOP;
                self.move_to(self.row, next.min(self.columns - 1));
            }
            // BEL, SO, SI and the rest: nothing to show.
            _ => {}
        }
    }

    fn escape(&mut self, byte: u8) {
        match byte {
            b'7' => self.save_cursor(),
            b'8' => self.restore_cursor(),
            b'D' => self.line_feed(),
            b'E' => {
                self.column = 0;
                self.line_feed();
            }
            b'M' => self.reverse_line_feed(),
            b'c' => self.reset(self.columns, self.rows),
            _ => {}
        }
    }

    fn csi(&mut self, sequence: &ControlSequence) {
        let count = usize::from(sequence.parameter_or(0, 1));
        if sequence.private == b'?' {
            let set = match sequence.final_byte {
                b'h' => true,
                b'l' => false,
                _ => return,
            };
            if sequence.parameters().contains(&25) {
                self.cursor_visible = set;
            }
            return;
        }
        if sequence.private != 0 || sequence.intermediate != 0 {
            return;
        }
        let (row, column) = (self.row, self.column);
        match sequence.final_byte {
            b'A' => self.move_to(row.saturating_sub(count).max(self.top_limit()), column),
            b'B' | b'e' => self.move_to((row + count).min(self.bottom_limit()), column),
            b'C' | b'a' => self.move_to(row, column + count),
            b'D' => self.move_to(row, column.saturating_sub(count)),
            b'E' => self.move_to((row + count).min(self.bottom_limit()), 0),
            b'F' => self.move_to(row.saturating_sub(count).max(self.top_limit()), 0),
            b'G' | b'`' => self.move_to(row, count - 1),
            b'd' => self.move_to(count - 1, column),
            b'H' | b'f' => {
                let row = usize::from(sequence.parameter_or(0, 1)) - 1;
                let column = usize::from(sequence.parameter_or(1, 1)) - 1;
                self.move_to(row, column);
            }
            b'J' => self.erase_display(sequence.parameters().first().copied().unwrap_or(0)),
            b'K' => self.erase_line(sequence.parameters().first().copied().unwrap_or(0)),
            b'X' => {
                self.wrap_pending = false;
                self.erase(row, column, column + count);
            }
            b'P' => self.delete_characters(count),
            b'@' => self.insert_characters(count),
            b'L' => self.insert_lines(count),
            b'M' => self.delete_lines(count),
            b'S' => self.scroll_region_up(count),
            b'T' => self.scroll_region_down(count),
            b'm' => self.select_graphic_rendition(sequence.parameters()),
            b'r' => {
                let top = usize::from(sequence.parameter_or(0, 1)) - 1;
                let bottom = usize::from(sequence.parameter_or(1, self.rows as u16)) - 1;
                if top < bottom && bottom < self.rows {
                    self.region_top = top;
                    self.region_bottom = bottom;
                    self.move_to(0, 0);
                }
            }
            b's' => self.save_cursor(),
            b'u' => self.restore_cursor(),
            _ => {}
        }
    }

    /// The highest row a relative move up reaches: the region's top when inside the region.
    fn top_limit(&self) -> usize {
        if self.row >= self.region_top {
            self.region_top
        } else {
            0
        }
    }

    fn bottom_limit(&self) -> usize {
        if self.row <= self.region_bottom {
            self.region_bottom
        } else {
            self.rows - 1
        }
    }

    fn move_to(&mut self, row: usize, column: usize) {
        self.row = row.min(self.rows - 1);
        self.column = column.min(self.columns - 1);
        self.wrap_pending = false;
    }

    fn save_cursor(&mut self) {
        self.saved = SavedCursor {
            row: self.row,
            column: self.column,
            attributes: self.attributes,
        };
    }

    fn restore_cursor(&mut self) {
        let saved = self.saved;
        self.move_to(saved.row, saved.column);
        self.attributes = saved.attributes;
    }

    fn line_feed(&mut self) {
        if self.row == self.region_bottom {
            self.scroll_region_up(1);
        } else if self.row + 1 < self.rows {
            self.row += 1;
        }
    }

    fn reverse_line_feed(&mut self) {
        if self.row == self.region_top {
            self.scroll_region_down(1);
        } else {
            self.row = self.row.saturating_sub(1);
        }
    }

    /// Scrolls the scroll region up by `lines`, blank lines entering at its bottom.
    fn scroll_region_up(&mut self, lines: usize) {
        let height = self.region_bottom - self.region_top + 1;
        let lines = lines.min(height);
        if height == self.rows {
            // The whole screen: turn the ring; the renderer draws every row again.
            self.first_row = (self.first_row + lines) % self.rows;
            self.scrolled += lines;
            for row in self.rows - lines..self.rows {
                self.erase(row, 0, self.columns);
            }
            return;
        }
        for row in self.region_top..=self.region_bottom - lines {
            self.copy_row(row + lines, row);
        }
        for row in self.region_bottom + 1 - lines..=self.region_bottom {
            self.erase(row, 0, self.columns);
        }
    }

    /// Scrolls the scroll region down by `lines`, blank lines entering at its top.
    fn scroll_region_down(&mut self, lines: usize) {
        let height = self.region_bottom - self.region_top + 1;
        let lines = lines.min(height);
        for row in (self.region_top + lines..=self.region_bottom).rev() {
            self.copy_row(row - lines, row);
        }
        for row in self.region_top..self.region_top + lines {
            self.erase(row, 0, self.columns);
        }
    }

    fn copy_row(&mut self, from: usize, to: usize) {
        let (from, to) = (self.slot(from) * MAX_COLUMNS, self.slot(to) * MAX_COLUMNS);
        self.cells.copy_within(from..from + self.columns, to);
        self.mark_slot_dirty(to / MAX_COLUMNS);
    }

    /// Marks the screen row that ring slot `slot` holds.
    fn mark_slot_dirty(&mut self, slot: usize) {
        let row = (slot + self.rows - self.first_row) % self.rows;
        self.dirty[row] = Span::ALL;
    }

    /// `CSI L`: blank lines at the cursor's row, the rest of the region moving down.
    fn insert_lines(&mut self, count: usize) {
        if (self.region_top..=self.region_bottom).contains(&self.row) {
            let top = core::mem::replace(&mut self.region_top, self.row);
            self.scroll_region_down(count);
            self.region_top = top;
            self.move_to(self.row, 0);
        }
    }

    /// `CSI M`: deletes lines at the cursor's row, the rest of the region moving up.
    fn delete_lines(&mut self, count: usize) {
        if (self.region_top..=self.region_bottom).contains(&self.row) {
            let top = core::mem::replace(&mut self.region_top, self.row);
            self.scroll_region_up(count);
            self.region_top = top;
            self.move_to(self.row, 0);
        }
    }

    fn erase_display(&mut self, how: u16) {
        self.wrap_pending = false;
        let (row, column) = (self.row, self.column);
        match how {
            0 => {
                self.erase(row, column, self.columns);
                for below in row + 1..self.rows {
                    self.erase(below, 0, self.columns);
                }
            }
            1 => {
                for above in 0..row {
                    self.erase(above, 0, self.columns);
                }
                self.erase(row, 0, column + 1);
            }
            2 | 3 => {
                for any in 0..self.rows {
                    self.erase(any, 0, self.columns);
                }
            }
            _ => {}
        }
    }

    fn erase_line(&mut self, how: u16) {
        self.wrap_pending = false;
        let (row, column) = (self.row, self.column);
        match how {
            0 => self.erase(row, column, self.columns),
            1 => self.erase(row, 0, column + 1),
            2 => self.erase(row, 0, self.columns),
            _ => {}
        }
    }

    /// `CSI P`: removes characters at the cursor; the rest of the line moves left.
    fn delete_characters(&mut self, count: usize) {
        self.wrap_pending = false;
        let count = count.min(self.columns - self.column);
        let start = self.slot(self.row) * MAX_COLUMNS;
        let (column, columns) = (self.column, self.columns);
        self.cells
            .copy_within(start + column + count..start + columns, start + column);
        self.dirty[self.row].add(column, columns);
        self.erase(self.row, columns - count, columns);
    }

    /// `CSI @`: blanks at the cursor; the rest of the line moves right (its end is lost).
    fn insert_characters(&mut self, count: usize) {
        self.wrap_pending = false;
        let count = count.min(self.columns - self.column);
        let start = self.slot(self.row) * MAX_COLUMNS;
        let (column, columns) = (self.column, self.columns);
        self.cells.copy_within(
            start + column..start + columns - count,
            start + column + count,
        );
        self.dirty[self.row].add(column, columns);
        self.erase(self.row, column, column + count);
    }

    fn select_graphic_rendition(&mut self, parameters: &[u16]) {
        if parameters.is_empty() {
            self.attributes = Attributes::DEFAULT;
            return;
        }
        let mut index = 0;
        while let Some(&parameter) = parameters.get(index) {
            let attributes = &mut self.attributes;
            match parameter {
                0 => *attributes = Attributes::DEFAULT,
                1 => attributes.bold = true,
                4 => attributes.underline = true,
                7 => attributes.reverse = true,
                21 | 22 => attributes.bold = false,
                24 => attributes.underline = false,
                27 => attributes.reverse = false,
                30..=37 => attributes.foreground = (parameter - 30) as u8,
                39 => attributes.foreground = DEFAULT_FOREGROUND,
                40..=47 => attributes.background = (parameter - 40) as u8,
                49 => attributes.background = DEFAULT_BACKGROUND,
                90..=97 => attributes.foreground = (parameter - 90 + 8) as u8,
                100..=107 => attributes.background = (parameter - 100 + 8) as u8,
                38 | 48 => {
                    // 38;5;N picks colour N (kept when it is one of the 16); 38;2;R;G;B a
                    // colour of its own, which this palette does not have.
                    let chosen = match parameters.get(index + 1) {
                        Some(5) => {
                            index += 2;
                            parameters.get(index).copied().filter(|&n| n < 16)
                        }
                        Some(2) => {
                            index += 4;
                            None
                        }
                        _ => None,
                    };
                    if let Some(colour) = chosen {
                        if parameter == 38 {
                            attributes.foreground = colour as u8;
                        } else {
                            attributes.background = colour as u8;
                        }
                    }
                }
                _ => {}
            }
            index += 1;
        }
    }
}

const fn clamp(value: usize, max: usize) -> usize {
    if value == 0 {
        1
    } else if value > max {
        max
    } else {
        value
    }
}

#[cfg(test)]
/// Displays a row's characters, without its trailing blanks.
pub struct RowText<'a>(&'a [Cell]);

#[cfg(test)]
impl core::fmt::Display for RowText<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let end = self
            .0
            .iter()
            .rposition(|cell| cell.character != ' ')
            .map_or(0, |last| last + 1);
        for cell in &self.0[..end] {
            core::fmt::Write::write_char(f, cell.character)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
