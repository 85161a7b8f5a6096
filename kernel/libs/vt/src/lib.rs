//! The terminal that the screen console is: what a Linux virtual terminal does with the bytes
//! written to it, without the pixels.
//!
//! This crate owns the pure logic of one text screen, shared by the kernel (which draws it on
//! the bootloader's framebuffer) and xtask (which draws the text a test expects the same way,
//! to find it in a QEMU screendump):
//!
//! - [`parser`]: bytes to [`parser::Action`]s: UTF-8 text, control characters, `ESC` and
//!   `CSI` sequences (ECMA-48 syntax; `OSC` strings are skipped).
//! - [`screen`]: the character grid those actions edit: cursor, scrolling (with a scroll
//!   region), erasing, inserting and deleting, SGR attributes, saved cursor, cursor
//!   visibility; it remembers which rows changed and how far the whole screen scrolled since it
//!   was last drawn, so that a renderer redraws little ([`screen::Screen::render`]).
//! - [`font`]: the glyphs (Noto Sans Mono, 16 pixels, pre-rasterised) and the 16 colours, and
//!   how a cell turns into pixels.
//!
//! It does no I/O, takes no locks and allocates nothing: the grid lives inline in
//! [`screen::Screen`] (at most [`screen::MAX_COLUMNS`] by [`screen::MAX_ROWS`]), which
//! [`screen::Screen::new`] builds in a `const` context, so the kernel keeps it in a static.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod font;
pub mod parser;
pub mod screen;

pub use screen::{Attributes, Cell, Screen, Surface};
