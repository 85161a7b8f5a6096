//! Kernel options: the text of `/etc/cmdline`, split into options.
//!
//! The syntax is close to Linux's command line:
//!
//! - Options are separated by ASCII whitespace, newlines included, so the text may span several
//!   lines and end with a newline.
//! - An option is a bare `key` or `key=value`. The key ends at the first `=`; the value may
//!   contain further `=` and may be empty (`key=`).
//! - A value starting with `"` runs to the next `"` on the same line and may contain whitespace
//!   and `#`: `init="/bin/a b"` has the value `/bin/a b`. The quotes are not part of the value.
//!   Without a closing quote the value runs to the end of the line. Text right after the closing
//!   quote starts the next option.
//! - A `#` at the start of an option begins a comment, which runs to the end of the line.
//!
//! This module only splits the text; what the keys mean is up to the kernel.
//!
//! ```
//! use initrd::cmdline::{Opt, parse, parse_bool};
//!
//! let text = "test log=debug # verbose for now\ninit=\"/bin/a b\" vma_lock=off\n";
//! let opts: Vec<Opt> = parse(text).collect();
//! assert_eq!(opts[0], Opt { key: "test", value: None });
//! assert_eq!(opts[1], Opt { key: "log", value: Some("debug") });
//! assert_eq!(opts[2], Opt { key: "init", value: Some("/bin/a b") });
//! assert_eq!(parse_bool(opts[3].value), Some(false));
//! assert_eq!(opts.len(), 4);
//! ```

/// One kernel option: `key` or `key=value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opt<'a> {
    /// The text before the first `=`, or the whole option if it has none.
    pub key: &'a str,
    /// The text after the first `=`, quotes removed; `None` for a bare `key`.
    pub value: Option<&'a str>,
}

/// Splits `line` (one or more lines of kernel options) into options, in order. See the
/// [module documentation](self) for the syntax. Any text is accepted.
pub fn parse(line: &str) -> impl Iterator<Item = Opt<'_>> + Clone {
    Options { rest: line }
}

/// Reads an option's value as a boolean: `on`, `yes`, `true`, `1` and a bare key (`None`) are
/// true; `off`, `no`, `false` and `0` are false, in any case. Anything else is `None`.
#[must_use]
pub fn parse_bool(value: Option<&str>) -> Option<bool> {
    const TRUE: [&str; 4] = ["on", "yes", "true", "1"];
    const FALSE: [&str; 4] = ["off", "no", "false", "0"];
    let Some(value) = value else {
        return Some(true);
    };
    let matches = |words: [&str; 4]| words.iter().any(|w| w.eq_ignore_ascii_case(value));
    if matches(TRUE) {
        Some(true)
    } else if matches(FALSE) {
        Some(false)
    } else {
        None
    }
}

/// The iterator returned by [`parse`].
#[derive(Clone, Debug)]
struct Options<'a> {
    /// The text not parsed yet.
    rest: &'a str,
}

impl<'a> Iterator for Options<'a> {
    type Item = Opt<'a>;

    fn next(&mut self) -> Option<Opt<'a>> {
        loop {
            let rest = self
                .rest
                .trim_start_matches(|c: char| c.is_ascii_whitespace());
            if let Some(comment) = rest.strip_prefix('#') {
                self.rest = comment
                    .split_once('\n')
                    .map_or("", |(_, next_line)| next_line);
                continue;
            }
            if rest.is_empty() {
                self.rest = rest;
                return None;
            }
            let key_end = rest
                .find(|c: char| c == '=' || c.is_ascii_whitespace())
                .unwrap_or(rest.len());
            let (key, after_key) = rest.split_at(key_end);
            let Some(after_eq) = after_key.strip_prefix('=') else {
                self.rest = after_key;
                return Some(Opt { key, value: None });
            };
            let (value, after_value) = match after_eq.strip_prefix('"') {
                Some(quoted) => split_quoted(quoted),
                None => {
                    let end = after_eq
                        .find(|c: char| c.is_ascii_whitespace())
                        .unwrap_or(after_eq.len());
                    after_eq.split_at(end)
                }
            };
            self.rest = after_value;
            return Some(Opt {
                key,
                value: Some(value),
            });
        }
    }
}

/// Splits `text`, which follows an opening quote, into the quoted value and the text after the
/// closing quote; without a closing quote on the line, the value is the rest of the line (less
/// trailing whitespace, such as a `\r`).
fn split_quoted(text: &str) -> (&str, &str) {
    let (line, after_line) = text.split_at(text.find('\n').unwrap_or(text.len()));
    match line.find('"') {
        Some(close) => (&text[..close], &text[close + 1..]),
        None => (
            line.trim_end_matches(|c: char| c.is_ascii_whitespace()),
            after_line,
        ),
    }
}
