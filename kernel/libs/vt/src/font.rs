//! How a cell looks: Noto Sans Mono glyphs, 16 pixels high (pre-rasterised intensities), in a
//! cell of [`CELL_WIDTH`] by [`CELL_HEIGHT`] pixels, coloured from the 16-colour palette of a
//! Linux virtual terminal. Bold text is drawn in the bold face and the bright variant of its
//! colour; reverse video and the cursor swap the colours; underline fills the cell's last glyph
//! row.

use noto_sans_mono_bitmap::{FontWeight, RasterHeight, RasterizedChar, get_raster};

use crate::screen::Attributes;

const HEIGHT: RasterHeight = RasterHeight::Size16;
/// Pixel rows of a glyph.
pub const GLYPH_HEIGHT: usize = HEIGHT.val();
/// Blank pixel rows under each glyph.
pub const LINE_SPACING: usize = 2;
pub const CELL_WIDTH: usize = noto_sans_mono_bitmap::get_raster_width(FontWeight::Regular, HEIGHT);
pub const CELL_HEIGHT: usize = GLYPH_HEIGHT + LINE_SPACING;
/// Pixels left blank around the grid: cell (row, column) starts at pixel
/// (`BORDER + column * CELL_WIDTH`, `BORDER + row * CELL_HEIGHT`).
pub const BORDER: usize = 4;

/// Red, green, blue.
pub type Rgb = [u8; 3];

/// The 16 colours, in SGR order: black, red, green, brown, blue, magenta, cyan, grey, then their
/// bright variants (Linux's default palette).
pub const PALETTE: [Rgb; 16] = [
    [0x00, 0x00, 0x00],
    [0xaa, 0x00, 0x00],
    [0x00, 0xaa, 0x00],
    [0xaa, 0x55, 0x00],
    [0x00, 0x00, 0xaa],
    [0xaa, 0x00, 0xaa],
    [0x00, 0xaa, 0xaa],
    [0xaa, 0xaa, 0xaa],
    [0x55, 0x55, 0x55],
    [0xff, 0x55, 0x55],
    [0x55, 0xff, 0x55],
    [0xff, 0xff, 0x55],
    [0x55, 0x55, 0xff],
    [0xff, 0x55, 0xff],
    [0x55, 0xff, 0xff],
    [0xff, 0xff, 0xff],
];

/// The glyph of `character` (`?` for one the font lacks).
pub fn glyph(character: char, bold: bool) -> RasterizedChar {
    let weight = if bold {
        FontWeight::Bold
    } else {
        FontWeight::Regular
    };
    get_raster(character, weight, HEIGHT)
        .or_else(|| get_raster('?', weight, HEIGHT))
        .expect("'?' is in every face")
}

/// The foreground and background colours of a cell with `attributes` (with the cursor on it,
/// if `cursor`).
pub fn colours(attributes: &Attributes, cursor: bool) -> (Rgb, Rgb) {
    let mut foreground = usize::from(attributes.foreground & 15);
    if attributes.bold && foreground < 8 {
        foreground += 8;
    }
    let (foreground, background) = (
        PALETTE[foreground],
        PALETTE[usize::from(attributes.background & 15)],
    );
    if attributes.reverse != cursor {
        (background, foreground)
    } else {
        (foreground, background)
    }
}

/// The colour of a glyph pixel of `intensity` (0: background, 255: foreground).
pub fn shade(foreground: Rgb, background: Rgb, intensity: u8) -> Rgb {
    let mix = |f: u8, b: u8| {
        let (f, b, i) = (u32::from(f), u32::from(b), u32::from(intensity));
        ((f * i + b * (255 - i)) / 255) as u8
    };
    [
        mix(foreground[0], background[0]),
        mix(foreground[1], background[1]),
        mix(foreground[2], background[2]),
    ]
}

/// Hands every pixel of a cell showing `character` with `attributes` to `pixel` as
/// `(x, y, colour)`, `x` below [`CELL_WIDTH`] and `y` below [`CELL_HEIGHT`], row by row.
pub fn draw_cell(
    character: char,
    attributes: &Attributes,
    cursor: bool,
    mut pixel: impl FnMut(usize, usize, Rgb),
) {
    let (foreground, background) = colours(attributes, cursor);
    let glyph = glyph(character, attributes.bold);
    for (y, row) in glyph.rows().enumerate() {
        let underlined = attributes.underline && y == GLYPH_HEIGHT - 1;
        for (x, &intensity) in row.iter().enumerate().take(CELL_WIDTH) {
            let intensity = if underlined { 255 } else { intensity };
            pixel(x, y, shade(foreground, background, intensity));
        }
    }
    for y in GLYPH_HEIGHT..CELL_HEIGHT {
        for x in 0..CELL_WIDTH {
            pixel(x, y, background);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_have_the_glyph_size() {
        const { assert!(CELL_WIDTH >= 6 && CELL_WIDTH <= 10) };
        let mut count = 0;
        let mut lit = 0;
        draw_cell('A', &Attributes::DEFAULT, false, |x, y, colour| {
            assert!(x < CELL_WIDTH && y < CELL_HEIGHT);
            count += 1;
            lit += usize::from(colour != PALETTE[0]);
        });
        assert_eq!(count, CELL_WIDTH * CELL_HEIGHT);
        assert!(lit > 10);
    }

    #[test]
    fn bold_is_bright_and_reverse_and_cursor_swap() {
        let bold = Attributes {
            bold: true,
            foreground: 1,
            ..Attributes::DEFAULT
        };
        assert_eq!(colours(&bold, false), (PALETTE[9], PALETTE[0]));
        let reverse = Attributes {
            reverse: true,
            ..Attributes::DEFAULT
        };
        assert_eq!(colours(&reverse, false), (PALETTE[0], PALETTE[7]));
        assert_eq!(colours(&reverse, true), (PALETTE[7], PALETTE[0]));
        assert_eq!(
            colours(&Attributes::DEFAULT, true),
            (PALETTE[0], PALETTE[7])
        );
        assert_eq!(shade([200, 0, 0], [0, 0, 100], 255), [200, 0, 0]);
        assert_eq!(shade([200, 0, 0], [0, 0, 100], 0), [0, 0, 100]);
    }
}
