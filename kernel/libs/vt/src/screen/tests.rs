use super::*;

fn screen(columns: usize, rows: usize) -> Box<Screen> {
    let mut screen = Box::new(Screen::new(1, 1));
    screen.reset(columns, rows);
    screen
}

fn text(screen: &Screen) -> Vec<String> {
    (0..screen.rows())
        .map(|row| screen.row_text(row).to_string())
        .collect()
}

/// A surface that keeps the characters it was drawn with, and counts what it did.
struct Recorded {
    cells: Vec<Vec<char>>,
    cursor: Option<(usize, usize)>,
    cells_drawn: usize,
}

impl Recorded {
    fn new(columns: usize, rows: usize) -> Self {
        Self {
            cells: vec![vec!['?'; columns]; rows],
            cursor: None,
            cells_drawn: 0,
        }
    }

    fn rows(&self) -> Vec<String> {
        self.cells
            .iter()
            .map(|row| row.iter().collect::<String>().trim_end().to_string())
            .collect()
    }
}

impl Surface for Recorded {
    fn draw_cells(&mut self, row: usize, column: usize, cells: &[Cell], cursor: Option<usize>) {
        for (index, cell) in cells.iter().enumerate() {
            self.cells[row][column + index] = cell.character;
        }
        if let Some(at) = cursor {
            self.cursor = Some((row, at));
        }
        self.cells_drawn += cells.len();
    }
}

#[test]
fn prints_wraps_and_scrolls() {
    let mut s = screen(5, 3);
    s.write(b"abcdefg\r\nxy\r\nz");
    assert_eq!(text(&s), ["fg", "xy", "z"]);
    // The last column leaves a wrap pending; a CR cancels it.
    let mut s = screen(5, 3);
    s.write(b"abcde");
    assert_eq!(s.cursor(), (0, 4));
    s.write(b"\rX");
    assert_eq!(text(&s), ["Xbcde", "", ""]);
    s.write(b"\n\tT");
    assert_eq!(text(&s), ["Xbcde", "    T", ""]);
}

#[test]
fn cursor_movement_and_clamping() {
    let mut s = screen(10, 5);
    s.write(b"\x1b[3;4Ha\x1b[2Ab\x1b[9Cc\x1b[20Dd\x1b[Be");
    assert_eq!(text(&s), ["d   b    c", " e", "   a", "", ""]);
    s.write(b"\x1b[H\x1b[2Jtop");
    assert_eq!(text(&s), ["top", "", "", "", ""]);
    s.write(b"\x1b[5;99H!");
    assert_eq!(s.row_text(4).to_string(), "         !");
    s.write(b"\x1b[1G\x08\x08x");
    assert_eq!(s.row_text(4).to_string(), "x        !");
}

#[test]
fn busybox_line_editing() {
    // What busybox's line editor writes to move back over a line and redraw its tail.
    let mut s = screen(20, 2);
    s.write(b"$ echo helo");
    s.write(b"\x08\x1b[1@l");
    assert_eq!(s.row_text(0).to_string(), "$ echo hello");
    s.write(b"\x1b[4D\x1b[2P");
    assert_eq!(s.row_text(0).to_string(), "$ echo llo");
    s.write(b"\r\x1b[K$ ");
    assert_eq!(s.row_text(0).to_string(), "$");
    assert_eq!(s.cursor(), (0, 2));
    s.write(b"abc\x1b[J");
    s.write(b"\x1b7\x1b[2;1Hsaved\x1b8d");
    assert_eq!(text(&s), ["$ abcd", "saved"]);
}

#[test]
fn erase_modes() {
    let mut s = screen(4, 3);
    s.write(b"aaaa\r\nbbbb\r\ncccc\x1b[2;2H\x1b[1K");
    assert_eq!(text(&s), ["aaaa", "  bb", "cccc"]);
    s.write(b"\x1b[0J");
    assert_eq!(text(&s), ["aaaa", "", ""]);
    s.write(b"\x1b[1J");
    assert_eq!(text(&s), ["", "", ""]);
    s.write(b"\x1b[1;1Hxyzw\x1b[1;2H\x1b[2X");
    assert_eq!(text(&s), ["x  w", "", ""]);
}

#[test]
fn attributes_from_sgr() {
    let mut s = screen(10, 1);
    s.write(b"\x1b[1;31ma\x1b[7mb\x1b[0mc\x1b[44;92md\x1b[39;49;38;5;3me\x1b[ma");
    let cells = s.row_cells(0);
    assert_eq!(
        (cells[0].attributes.bold, cells[0].attributes.foreground),
        (true, 1)
    );
    assert!(cells[1].attributes.reverse && cells[1].attributes.bold);
    assert_eq!(cells[2].attributes, Attributes::DEFAULT);
    assert_eq!(
        (
            cells[3].attributes.foreground,
            cells[3].attributes.background
        ),
        (10, 4)
    );
    assert_eq!(
        (
            cells[4].attributes.foreground,
            cells[4].attributes.background
        ),
        (3, 0)
    );
    assert_eq!(cells[5].attributes, Attributes::DEFAULT);
    // Erasing takes the current background.
    s.write(b"\x1b[42m\x1b[2K");
    assert_eq!(s.row_cells(0)[9].attributes.background, 2);
}

#[test]
fn scroll_region_and_line_insertion() {
    let mut s = screen(3, 4);
    s.write(b"a\r\nb\r\nc\r\nd");
    s.write(b"\x1b[2;3r\x1b[3;1H\n");
    assert_eq!(text(&s), ["a", "c", "", "d"]);
    s.write(b"\x1b[2;1H\x1bMx");
    assert_eq!(text(&s), ["a", "x", "c", "d"]);
    s.write(b"\x1b[r\x1b[2;1H\x1b[L");
    assert_eq!(text(&s), ["a", "", "x", "c"]);
    s.write(b"\x1b[M\x1b[M");
    assert_eq!(text(&s), ["a", "c", "", ""]);
    s.write(b"\x1b[1;1H\x1b[M");
    assert_eq!(text(&s), ["c", "", "", ""]);
}

#[test]
fn cursor_visibility() {
    let mut s = screen(3, 1);
    s.write(b"\x1b[?25l");
    assert!(!s.cursor_visible());
    s.write(b"\x1b[?25h");
    assert!(s.cursor_visible());
}

#[test]
fn render_draws_changes_and_all_the_text_after_scrolls() {
    let mut s = screen(4, 3);
    let mut surface = Recorded::new(4, 3);
    s.write(b"a\r\nb");
    s.render(&mut surface);
    assert_eq!(surface.rows(), ["a", "b", ""]);
    assert_eq!(surface.cursor, Some((1, 1)));
    assert!(!s.needs_render());
    // One changed cell: it is drawn, and the cursor's old and new cells.
    surface.cells_drawn = 0;
    s.write(b"c");
    s.render(&mut surface);
    assert_eq!(surface.cells_drawn, 2);
    // Two scrolls: each row's text is drawn again, and what the picture showed beyond it
    // (the cursor), but not the blanks after.
    s.write(b"\r\n1\r\n2\r\n3");
    assert_eq!(s.scrolled_since_render(), 2);
    surface.cells_drawn = 0;
    s.render(&mut surface);
    assert_eq!(surface.rows(), ["1", "2", "3"]);
    assert_eq!(surface.rows(), text(&s));
    assert_eq!(surface.cells_drawn, 1 + 3 + 2);
    // A long line scrolled away is erased from the picture.
    s.write(b"\r\nlong\r\n5\r\n6");
    s.render(&mut surface);
    s.write(b"\r\n7");
    s.render(&mut surface);
    assert_eq!(surface.rows(), ["5", "6", "7"]);
    // A moved cursor redraws the cells it left and entered.
    surface.cells_drawn = 0;
    s.write(b"\x1b[1;1H");
    assert!(s.needs_render());
    s.render(&mut surface);
    assert_eq!((surface.cells_drawn, surface.cursor), (2, Some((0, 0))));
    // Editing in the middle of a line redraws from there to its end.
    surface.cells_drawn = 0;
    s.write(b"\x1b[P");
    s.render(&mut surface);
    assert_eq!(surface.cells_drawn, 4);
    assert_eq!(surface.rows(), text(&s));
}
