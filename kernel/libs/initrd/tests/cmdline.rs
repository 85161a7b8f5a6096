//! Kernel option parsing.

use initrd::cmdline::{Opt, parse, parse_bool};
use proptest::prelude::*;

/// The options of `text` as `(key, value)` pairs.
fn opts(text: &str) -> Vec<(&str, Option<&str>)> {
    parse(text).map(|Opt { key, value }| (key, value)).collect()
}

#[test]
fn bare_keys_and_values() {
    assert_eq!(
        opts("test init=/bin/init log=debug vma_lock=off stats"),
        [
            ("test", None),
            ("init", Some("/bin/init")),
            ("log", Some("debug")),
            ("vma_lock", Some("off")),
            ("stats", None),
        ]
    );
}

#[test]
fn empty_and_blank_input() {
    assert_eq!(opts(""), []);
    assert_eq!(opts(" \t\r\n \n"), []);
    assert_eq!(opts("# only a comment\n\n# and another"), []);
}

#[test]
fn whitespace_and_lines() {
    assert_eq!(
        opts("  a=1\t b \r\n\n c=3\n"),
        [("a", Some("1")), ("b", None), ("c", Some("3"))]
    );
    assert_eq!(opts("a=1\r\nb\r\n"), [("a", Some("1")), ("b", None)]);
}

#[test]
fn equals_signs() {
    assert_eq!(opts("k= x"), [("k", Some("")), ("x", None)]);
    assert_eq!(opts("k=a=b"), [("k", Some("a=b"))]);
    assert_eq!(opts("=v"), [("", Some("v"))]);
    assert_eq!(opts("k=\n"), [("k", Some(""))]);
}

#[test]
fn quoted_values() {
    assert_eq!(
        opts(r#"init="/bin/a b" log=debug"#),
        [("init", Some("/bin/a b")), ("log", Some("debug"))]
    );
    assert_eq!(opts(r#"k="""#), [("k", Some(""))]);
    assert_eq!(
        opts(r#"k="a # not a comment""#),
        [("k", Some("a # not a comment"))]
    );
    assert_eq!(opts("k=\"a=b\tc\"\n"), [("k", Some("a=b\tc"))]);
    // Text right after the closing quote starts the next option.
    assert_eq!(opts(r#"k="a"b"#), [("k", Some("a")), ("b", None)]);
    // A quote inside an unquoted value is an ordinary character.
    assert_eq!(opts(r#"k=a"b c"#), [("k", Some("a\"b")), ("c", None)]);
    // A quote in a key is too.
    assert_eq!(opts(r#""k=v""#), [("\"k", Some("v\""))]);
}

#[test]
fn unterminated_quote_runs_to_end_of_line() {
    assert_eq!(
        opts("k=\"a b  \r\nnext"),
        [("k", Some("a b")), ("next", None)]
    );
    assert_eq!(opts("k=\"a b"), [("k", Some("a b"))]);
    assert_eq!(opts("k=\""), [("k", Some(""))]);
}

#[test]
fn comments() {
    assert_eq!(
        opts("a # b c=d\ne=f # g\n#h\ni"),
        [("a", None), ("e", Some("f")), ("i", None)]
    );
    // '#' only starts a comment at the start of an option.
    assert_eq!(
        opts("color=#fff a#b"),
        [("color", Some("#fff")), ("a#b", None)]
    );
    assert_eq!(opts("#"), []);
}

#[test]
fn non_ascii_text() {
    assert_eq!(
        opts("motd=héllo\u{a0}wörld ключ"),
        [("motd", Some("héllo\u{a0}wörld")), ("ключ", None)]
    );
}

#[test]
fn booleans() {
    for yes in [
        None,
        Some("on"),
        Some("1"),
        Some("yes"),
        Some("true"),
        Some("ON"),
        Some("True"),
    ] {
        assert_eq!(parse_bool(yes), Some(true), "{yes:?}");
    }
    for no in [
        Some("off"),
        Some("0"),
        Some("no"),
        Some("false"),
        Some("Off"),
        Some("FALSE"),
    ] {
        assert_eq!(parse_bool(no), Some(false), "{no:?}");
    }
    for neither in [Some(""), Some("2"), Some("maybe"), Some("o"), Some(" on")] {
        assert_eq!(parse_bool(neither), None, "{neither:?}");
    }
    let vma_lock = parse("vma_lock=off stats").map(|o| parse_bool(o.value));
    assert_eq!(vma_lock.collect::<Vec<_>>(), [Some(false), Some(true)]);
}

/// A value as written in the file: bare, or quoted when it holds spaces.
fn value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        "[a-z0-9/=._#-]{0,8}".prop_map(Some),
        "[a-z0-9/=. #\t-]{0,8}".prop_map(Some),
    ]
}

proptest! {
    #[test]
    fn any_text_parses(text in any::<String>()) {
        for opt in parse(&text) {
            // Every key and value is a piece of the input.
            prop_assert!(text.contains(opt.key));
            prop_assert!(opt.value.is_none_or(|v| text.contains(v)));
        }
    }

    #[test]
    fn written_options_read_back(
        options in prop::collection::vec(("[a-z_][a-z0-9_.]{0,8}", value()), 0..8),
        separators in prop::collection::vec("[ \t\n]{1,3}", 8),
    ) {
        let mut text = String::new();
        for ((key, value), separator) in options.iter().zip(&separators) {
            text.push_str(key);
            match value {
                Some(v) if v.contains([' ', '\t', '#']) || v.is_empty() => {
                    text.push_str(&format!("=\"{v}\""));
                }
                Some(v) => text.push_str(&format!("={v}")),
                None => {}
            }
            text.push_str(separator);
        }
        let read: Vec<_> = parse(&text).map(|o| (o.key.to_owned(), o.value.map(str::to_owned))).collect();
        prop_assert_eq!(read, options);
    }
}
