//! Parsing and judging the KTAP (version 1) output of the kernel's test runner.
//!
//! The kernel prints its test results on the serial port, interleaved with ordinary log lines:
//!
//! ```text
//! KTAP version 1
//! 1..4
//! [    0.123456] INFO  heap: ready
//! ok 1 heap_many_sizes
//! not ok 2 frame_alloc_basic # assertion failed: x == y at kernel/src/mm/frame.rs:10
//! # diagnostic line
//! ok 3 something # SKIP needs 2 CPUs
//!     KTAP version 1
//!     1..2
//!     ok 1 a
//!     ok 2 b
//! ok 4 userprog
//! 2 passed, 1 failed, 1 skipped
//! ```
//!
//! Rules of this parser:
//! - Lines that are not KTAP (`KTAP version N`, a plan `1..N`, a result `ok N name` or
//!   `not ok N name`, optionally followed by `# comment`, a diagnostic `# text`, or a summary
//!   `P passed, F failed[, S skipped]`) are ignored, so log lines may appear anywhere.
//! - Indentation (leading spaces) gives the nesting: lines at indent 0 form the top-level
//!   [`Report`]; a more indented block is parsed recursively and becomes the
//!   [`TestResult::subtests`] of the next result line at the enclosing level.
//! - A `# SKIP reason` comment makes the result [`Status::Skip`]; any other comment is kept as
//!   the [`TestResult::reason`] (for a failure, its explanation).
//! - Diagnostic lines belong to the result before them (to [`Report::diagnostics`] before the
//!   first result).
//! - The summary counts passed and failed tests; skipped tests count in neither and may be
//!   given as a third number.

use std::fmt;

/// The status of one test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// `ok`: the test passed.
    Ok,
    /// `not ok`: the test failed.
    NotOk,
    /// `# SKIP`: the test did not run.
    Skip,
}

/// One result line, with what belongs to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestResult {
    /// The test number from the result line.
    pub number: usize,
    /// The test's name (the description after the number; may be empty).
    pub name: String,
    /// Passed, failed or skipped.
    pub status: Status,
    /// The text after `#` (for skips, after `SKIP`), if not empty: why the test failed or was
    /// skipped.
    pub reason: Option<String>,
    /// Diagnostic lines (without their `# `) between this result and the next.
    pub diagnostics: Vec<String>,
    /// The nested test report printed (indented) just before this result, if any.
    pub subtests: Option<Box<Report>>,
}

/// The counts in a summary line such as `3 passed, 1 failed, 2 skipped`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Summary {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Tests that were skipped, if the line says.
    pub skipped: Option<usize>,
}

impl Summary {
    /// Whether the summary matches counted results (skips only if the summary counts them).
    fn agrees_with(&self, passed: usize, failed: usize, skipped: usize) -> bool {
        self.passed == passed
            && self.failed == failed
            && self.skipped.is_none_or(|count| count == skipped)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)?;
        if let Some(skipped) = self.skipped {
            write!(f, ", {skipped} skipped")?;
        }
        Ok(())
    }
}

/// The KTAP output of one level: the whole run, or the subtests of one test.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Whether a `KTAP version 1` line was seen.
    pub version_seen: bool,
    /// The number of tests announced by the plan line `1..N`.
    pub plan: Option<usize>,
    /// The result lines, in order of appearance.
    pub results: Vec<TestResult>,
    /// The summary line.
    pub summary: Option<Summary>,
    /// Diagnostic lines before the first result.
    pub diagnostics: Vec<String>,
    /// Structural problems found while parsing (a second plan, a repeated version line...),
    /// each with its 1-based line number.
    pub errors: Vec<String>,
}

/// The judgement of a report: the list of reasons it is not a complete, successful run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// One sentence per problem; empty when the run passed.
    pub problems: Vec<String>,
}

impl Verdict {
    /// Whether the run is complete and no test failed.
    pub fn is_pass(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Parses the KTAP output in `lines` (serial output, one entry per line, possibly with log
/// lines in between).
pub fn parse<S: AsRef<str>>(lines: &[S]) -> Report {
    let items = lines
        .iter()
        .enumerate()
        .filter_map(|(index, line)| Item::classify(index + 1, line.as_ref()))
        .collect();
    Parser { items, pos: 0 }.block(0)
}

/// A KTAP line: where it is, how far it is indented and what it says.
struct Item<'a> {
    line: usize,
    indent: usize,
    kind: Kind<'a>,
}

enum Kind<'a> {
    Version(u32),
    Plan(usize),
    Result {
        ok: bool,
        number: usize,
        name: &'a str,
        comment: Option<&'a str>,
    },
    Diagnostic(&'a str),
    Summary(Summary),
}

impl<'a> Item<'a> {
    /// The KTAP meaning of `text`, line `line` of the input, or `None` for other lines.
    fn classify(line: usize, text: &'a str) -> Option<Item<'a>> {
        let content = text.trim_start_matches(' ');
        let indent = text.len() - content.len();
        let content = content.trim_end();
        let kind = if let Some(rest) = content.strip_prefix("KTAP version ") {
            Kind::Version(rest.trim().parse().ok()?)
        } else if let Some(rest) = content.strip_prefix('#') {
            Kind::Diagnostic(rest.strip_prefix(' ').unwrap_or(rest))
        } else if let Some(rest) = content.strip_prefix("1..") {
            let (count, rest) = leading_number(rest)?;
            if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
                return None;
            }
            Kind::Plan(count)
        } else if let Some(rest) = content.strip_prefix("ok ") {
            result_kind(true, rest)?
        } else if let Some(rest) = content.strip_prefix("not ok ") {
            result_kind(false, rest)?
        } else {
            Kind::Summary(parse_summary(content)?)
        };
        Some(Item { line, indent, kind })
    }
}

/// The number at the start of `text` and what follows it.
fn leading_number(text: &str) -> Option<(usize, &str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    Some((text[..end].parse().ok()?, &text[end..]))
}

/// A result line after its `ok ` or `not ok `: `N[ [- ]name][ # comment]`.
fn result_kind(ok: bool, rest: &str) -> Option<Kind<'_>> {
    let (number, rest) = leading_number(rest.trim_start())?;
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    let (name, comment) = match rest.split_once('#') {
        Some((name, comment)) => (name, Some(comment.trim())),
        None => (rest, None),
    };
    let name = name.trim();
    let name = name.strip_prefix("- ").unwrap_or(name).trim();
    Some(Kind::Result {
        ok,
        number,
        name,
        comment,
    })
}

/// A summary line `P passed, F failed[, S skipped]`, possibly after one word and a colon
/// (`tests: 3 passed, 0 failed`).
fn parse_summary(content: &str) -> Option<Summary> {
    let counts = match content.split_once(": ") {
        Some((word, rest)) if !word.is_empty() && !word.contains(char::is_whitespace) => rest,
        _ => content,
    };
    let mut parts = counts.split(", ");
    let count = |part: Option<&str>, label: &str| -> Option<usize> {
        part?.strip_suffix(label)?.strip_suffix(' ')?.parse().ok()
    };
    let passed = count(parts.next(), "passed")?;
    let failed = count(parts.next(), "failed")?;
    let skipped = match parts.next() {
        Some(part) => Some(count(Some(part), "skipped")?),
        None => None,
    };
    parts.next().is_none().then_some(Summary {
        passed,
        failed,
        skipped,
    })
}

/// Status and reason from a result's `ok`/`not ok` and comment.
fn status_and_reason(ok: bool, comment: Option<&str>) -> (Status, Option<String>) {
    let non_empty = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    let status = if ok { Status::Ok } else { Status::NotOk };
    let Some(comment) = comment else {
        return (status, None);
    };
    let is_skip = comment
        .get(..4)
        .is_some_and(|word| word.eq_ignore_ascii_case("skip"))
        && !comment[4..].starts_with(|c: char| c.is_alphanumeric());
    if is_skip {
        (Status::Skip, non_empty(comment[4..].trim()))
    } else {
        (status, non_empty(comment))
    }
}

struct Parser<'a> {
    items: Vec<Item<'a>>,
    pos: usize,
}

impl Parser<'_> {
    /// Parses the items at `indent` (and, recursively, deeper ones) until one less indented.
    fn block(&mut self, indent: usize) -> Report {
        let mut report = Report::default();
        // A nested block waiting for its result line, and the line it started on.
        let mut pending: Option<(usize, Report)> = None;
        while let Some(item) = self.items.get(self.pos) {
            let line = item.line;
            if item.indent < indent {
                break;
            }
            if item.indent > indent {
                let nested = self.block(item.indent);
                if let Some((start, orphan)) = pending.replace((line, nested)) {
                    report.errors.push(orphan_error(start, &orphan, &report));
                }
                continue;
            }
            self.pos += 1;
            match item.kind {
                Kind::Version(version) => {
                    if report.version_seen {
                        report.errors.push(format!(
                            "line {line}: repeated 'KTAP version' line (did the kernel restart?)"
                        ));
                    } else if version != 1 {
                        report
                            .errors
                            .push(format!("line {line}: unsupported KTAP version {version}"));
                    }
                    report.version_seen = true;
                }
                Kind::Plan(count) => match report.plan {
                    Some(first) => report.errors.push(format!(
                        "line {line}: second plan '1..{count}' (the first was '1..{first}')"
                    )),
                    None => report.plan = Some(count),
                },
                Kind::Result {
                    ok,
                    number,
                    name,
                    comment,
                } => {
                    if report.summary.is_some() {
                        report.errors.push(format!(
                            "line {line}: result for test {number} after the summary line"
                        ));
                    }
                    let (status, reason) = status_and_reason(ok, comment);
                    report.results.push(TestResult {
                        number,
                        name: name.to_owned(),
                        status,
                        reason,
                        diagnostics: Vec::new(),
                        subtests: pending.take().map(|(_, nested)| Box::new(nested)),
                    });
                }
                Kind::Diagnostic(text) => match report.results.last_mut() {
                    Some(result) => result.diagnostics.push(text.to_owned()),
                    None => report.diagnostics.push(text.to_owned()),
                },
                Kind::Summary(summary) => match report.summary {
                    Some(_) => report
                        .errors
                        .push(format!("line {line}: second summary line '{summary}'")),
                    None => report.summary = Some(summary),
                },
            }
        }
        if let Some((start, orphan)) = pending {
            report.errors.push(orphan_error(start, &orphan, &report));
        }
        report
    }
}

/// The error for a nested block starting on line `start` that no result line claimed.
fn orphan_error(start: usize, nested: &Report, parent: &Report) -> String {
    let next = parent.results.last().map_or(1, |result| result.number + 1);
    format!(
        "line {start}: nested tests ({}) have no result line (hang or crash inside test {next}?)",
        nested.progress()
    )
}

impl Report {
    /// Counts the results at this level: (passed, failed, skipped).
    pub fn counts(&self) -> (usize, usize, usize) {
        self.results.iter().fold(
            (0, 0, 0),
            |(passed, failed, skipped), result| match result.status {
                Status::Ok => (passed + 1, failed, skipped),
                Status::NotOk => (passed, failed + 1, skipped),
                Status::Skip => (passed, failed, skipped + 1),
            },
        )
    }

    /// Judges whether this top-level report shows a complete and successful run: a version
    /// line and a plan, as many results as planned, numbered 1 to N in order, none failed, and
    /// a summary that agrees with the results; nested reports are judged likewise, except that
    /// they need neither a version line nor a summary.
    pub fn verdict(&self) -> Verdict {
        let mut problems = Vec::new();
        self.check(true, &mut problems);
        Verdict { problems }
    }

    /// How far the tests got, such as "2 of 4 reported".
    fn progress(&self) -> String {
        match self.plan {
            Some(plan) => format!("{} of {plan} reported", self.results.len()),
            None => format!("{} reported, no plan", self.results.len()),
        }
    }

    /// Adds this report's problems to `problems`.
    fn check(&self, top_level: bool, problems: &mut Vec<String>) {
        problems.extend(self.errors.iter().cloned());
        if top_level && !self.version_seen && self.plan.is_none() && self.results.is_empty() {
            problems.push("no KTAP output (the kernel never reached its tests?)".to_owned());
            return;
        }
        if top_level && !self.version_seen {
            problems.push("no 'KTAP version 1' line".to_owned());
        }
        let reported = self.results.len();
        match self.plan {
            None => problems.push("no plan line ('1..N')".to_owned()),
            Some(plan) if reported < plan => {
                problems.push(match self.results.last() {
                    Some(last) => format!(
                        "plan says {plan} tests, {reported} reported \
                         (hang or crash after test {} '{}'?)",
                        last.number, last.name
                    ),
                    None => format!(
                        "plan says {plan} tests, none reported (hang or crash before the first?)"
                    ),
                });
            }
            Some(plan) if reported > plan => {
                problems.push(format!("plan says {plan} tests, but {reported} reported"));
            }
            Some(_) => {}
        }
        if let Some((index, result)) = self
            .results
            .iter()
            .enumerate()
            .find(|(index, result)| result.number != index + 1)
        {
            problems.push(format!(
                "test numbers out of order: expected {}, got {} '{}'",
                index + 1,
                result.number,
                result.name
            ));
        }
        for result in &self.results {
            if result.status == Status::NotOk {
                problems.push(match &result.reason {
                    Some(reason) => {
                        format!("test {} '{}' failed: {reason}", result.number, result.name)
                    }
                    None => format!("test {} '{}' failed", result.number, result.name),
                });
            }
            if let Some(subtests) = &result.subtests {
                let mut nested = Vec::new();
                subtests.check(false, &mut nested);
                problems.extend(nested.into_iter().map(|problem| {
                    format!("in test {} '{}': {problem}", result.number, result.name)
                }));
            }
        }
        let (passed, failed, skipped) = self.counts();
        match self.summary {
            None if top_level => {
                problems.push("no summary line ('N passed, N failed')".to_owned());
            }
            Some(summary) if !summary.agrees_with(passed, failed, skipped) => {
                problems.push(format!(
                    "summary says '{summary}' but the results are \
                     {passed} passed, {failed} failed, {skipped} skipped"
                ));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    fn names(report: &Report) -> Vec<&str> {
        report.results.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn plain_run() {
        let report = parse(&lines(
            "KTAP version 1\n1..3\nok 1 heap_many_sizes\nok 2 frame_alloc\nok 3 - dashed\n\
             3 passed, 0 failed",
        ));
        assert!(report.version_seen);
        assert_eq!(report.plan, Some(3));
        assert_eq!(names(&report), ["heap_many_sizes", "frame_alloc", "dashed"]);
        assert!(report.results.iter().all(|r| r.status == Status::Ok));
        assert_eq!(
            report.summary,
            Some(Summary {
                passed: 3,
                failed: 0,
                skipped: None
            })
        );
        assert_eq!(report.counts(), (3, 0, 0));
        assert!(report.errors.is_empty());
        assert!(report.verdict().is_pass(), "{:?}", report.verdict());
    }

    #[test]
    fn log_lines_are_ignored() {
        let report = parse(&lines(
            "BdsDxe: loading Boot0001\n\
             [    0.000001] INFO  kernel starting\n\
             KTAP version 1\n\
             [ 0.1] 0 INFO heap ready\n\
             1..2\n\
             [    0.123456] WARN  okay, something odd\n\
             ok 1 first\n\
             okay this is not a result\n\
             ok two also not\n\
             [    0.2] 1 DEBUG ok 3 inside a log line\n\
             ok 2 second\n\
             1..2..3\n\
             2 passed, 0 failed\n\
             [    0.3] INFO  exiting",
        ));
        assert_eq!(report.plan, Some(2));
        assert_eq!(names(&report), ["first", "second"]);
        assert!(report.verdict().is_pass(), "{:?}", report.verdict());
    }

    #[test]
    fn carriage_returns_and_trailing_space_are_tolerated() {
        let report = parse(&[
            "KTAP version 1  ",
            "1..1\r",
            "ok 1 a\r",
            "1 passed, 0 failed\r",
        ]);
        assert!(report.verdict().is_pass(), "{:?}", report.verdict());
    }

    #[test]
    fn failure_with_reason_and_diagnostics() {
        let report = parse(&lines(
            "KTAP version 1\n1..3\n# before any result\nok 1 a\n\
             not ok 2 frame_alloc_basic # assertion failed: x == y at kernel/src/mm/frame.rs:10\n\
             # diagnostic line\n#\n[ 1.0] ERROR noise\n# second\nok 3 c\n2 passed, 1 failed",
        ));
        assert_eq!(report.diagnostics, ["before any result"]);
        let failed = &report.results[1];
        assert_eq!(failed.status, Status::NotOk);
        assert_eq!(failed.name, "frame_alloc_basic");
        assert_eq!(
            failed.reason.as_deref(),
            Some("assertion failed: x == y at kernel/src/mm/frame.rs:10")
        );
        assert_eq!(failed.diagnostics, ["diagnostic line", "", "second"]);
        assert!(report.results[0].diagnostics.is_empty());
        assert_eq!(report.counts(), (2, 1, 0));
        assert_eq!(
            report.verdict().problems,
            [
                "test 2 'frame_alloc_basic' failed: assertion failed: x == y at \
              kernel/src/mm/frame.rs:10"
            ]
        );

        let report = parse(&[
            "KTAP version 1",
            "1..1",
            "not ok 1 bare",
            "0 passed, 1 failed",
        ]);
        assert_eq!(report.results[0].reason, None);
        assert_eq!(report.verdict().problems, ["test 1 'bare' failed"]);
    }

    #[test]
    fn skips() {
        let report = parse(&lines(
            "KTAP version 1\n1..4\nok 1 a\nok 2 smp # SKIP needs 2 CPUs\nok 3 b # skip\n\
             ok 4 c # skipping is not a directive\n3 passed, 0 failed",
        ));
        let statuses: Vec<Status> = report.results.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [Status::Ok, Status::Skip, Status::Skip, Status::Ok]
        );
        assert_eq!(report.results[1].reason.as_deref(), Some("needs 2 CPUs"));
        assert_eq!(report.results[2].reason, None);
        assert_eq!(
            report.results[3].reason.as_deref(),
            Some("skipping is not a directive")
        );
        assert_eq!(report.counts(), (2, 0, 2));
        // "3 passed" is wrong: skips count as neither passed nor failed.
        assert_eq!(
            report.verdict().problems,
            ["summary says '3 passed, 0 failed' but the results are 2 passed, 0 failed, 2 skipped"]
        );

        let report = parse(&lines(
            "KTAP version 1\n1..2\nok 1 a\nok 2 smp # SKIP\nsummary: 1 passed, 0 failed, 1 skipped",
        ));
        assert_eq!(
            report.summary,
            Some(Summary {
                passed: 1,
                failed: 0,
                skipped: Some(1)
            })
        );
        assert!(report.verdict().is_pass(), "{:?}", report.verdict());
    }

    #[test]
    fn nested_subtests_attach_to_the_following_result() {
        let report = parse(&lines(
            "KTAP version 1\n1..2\nok 1 plain\n    KTAP version 1\n    1..2\n    ok 1 a\n\
             [ 2.0] INFO  user program running\n    # nested diag\n    ok 2 b\nok 2 userprog\n\
             2 passed, 0 failed",
        ));
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert!(report.results[0].subtests.is_none());
        let user = &report.results[1];
        assert_eq!(user.name, "userprog");
        let nested = user.subtests.as_deref().expect("subtests");
        assert!(nested.version_seen);
        assert_eq!(nested.plan, Some(2));
        assert_eq!(names(nested), ["a", "b"]);
        assert_eq!(nested.results[0].diagnostics, ["nested diag"]);
        assert!(report.verdict().is_pass(), "{:?}", report.verdict());
    }

    #[test]
    fn nested_failures_and_deeper_nesting() {
        let report = parse(&lines(
            "KTAP version 1\n1..1\n    1..1\n        1..1\n        not ok 1 deep # boom\n\
             \x20   not ok 1 middle\nnot ok 1 outer\n0 passed, 1 failed",
        ));
        let middle = report.results[0].subtests.as_deref().expect("middle");
        let deep = middle.results[0].subtests.as_deref().expect("deep");
        assert_eq!(deep.results[0].reason.as_deref(), Some("boom"));
        assert_eq!(
            report.verdict().problems,
            [
                "test 1 'outer' failed",
                "in test 1 'outer': test 1 'middle' failed",
                "in test 1 'outer': in test 1 'middle': test 1 'deep' failed: boom",
            ]
        );
    }

    #[test]
    fn nested_block_without_result_line() {
        let report = parse(&lines(
            "KTAP version 1\n1..2\nok 1 a\n    KTAP version 1\n    1..3\n    ok 1 x",
        ));
        assert_eq!(
            report.errors,
            [
                "line 4: nested tests (1 of 3 reported) have no result line \
              (hang or crash inside test 2?)"
            ]
        );
        let problems = report.verdict().problems;
        assert_eq!(problems[0], report.errors[0]);
        assert!(problems.contains(
            &"plan says 2 tests, 1 reported (hang or crash after test 1 'a'?)".to_owned()
        ));
    }

    #[test]
    fn missing_summary() {
        let report = parse(&lines("KTAP version 1\n1..1\nok 1 a"));
        assert_eq!(
            report.verdict().problems,
            ["no summary line ('N passed, N failed')"]
        );
    }

    #[test]
    fn truncated_run() {
        let report = parse(&lines(
            "KTAP version 1\n1..4\nok 1 heap\nok 2 foo\n[ 1.0] INFO  starting test 3",
        ));
        assert_eq!(
            report.verdict().problems,
            [
                "plan says 4 tests, 2 reported (hang or crash after test 2 'foo'?)",
                "no summary line ('N passed, N failed')",
            ]
        );
        let report = parse(&lines("KTAP version 1\n1..4"));
        assert_eq!(
            report.verdict().problems[0],
            "plan says 4 tests, none reported (hang or crash before the first?)"
        );
    }

    #[test]
    fn no_output_at_all() {
        let report = parse(&lines("[ 0.0] INFO  booting\npanicked at src/main.rs:1"));
        assert_eq!(report, Report::default());
        assert_eq!(
            report.verdict().problems,
            ["no KTAP output (the kernel never reached its tests?)"]
        );
        assert!(!parse::<String>(&[]).verdict().is_pass());
    }

    #[test]
    fn missing_version_and_plan() {
        let report = parse(&lines("ok 1 a\n1 passed, 0 failed"));
        assert_eq!(
            report.verdict().problems,
            ["no 'KTAP version 1' line", "no plan line ('1..N')"]
        );
    }

    #[test]
    fn numbering_errors() {
        let report = parse(&lines(
            "KTAP version 1\n1..3\nok 1 a\nok 3 c\nok 2 b\n3 passed, 0 failed",
        ));
        assert_eq!(
            report.verdict().problems,
            ["test numbers out of order: expected 2, got 3 'c'"]
        );
        let report = parse(&lines(
            "KTAP version 1\n1..2\nok 1 a\nok 1 a\nok 2 b\n3 passed, 0 failed",
        ));
        assert_eq!(
            report.verdict().problems,
            [
                "plan says 2 tests, but 3 reported",
                "test numbers out of order: expected 2, got 1 'a'",
            ]
        );
    }

    #[test]
    fn structural_errors() {
        let report = parse(&lines(
            "KTAP version 1\n1..1\nok 1 a\n1 passed, 0 failed\n1..1\nKTAP version 1\n\
             ok 2 late\n1 passed, 0 failed",
        ));
        assert_eq!(
            report.errors,
            [
                "line 5: second plan '1..1' (the first was '1..1')",
                "line 6: repeated 'KTAP version' line (did the kernel restart?)",
                "line 7: result for test 2 after the summary line",
                "line 8: second summary line '1 passed, 0 failed'",
            ]
        );
        assert!(!report.verdict().is_pass());

        let report = parse(&["KTAP version 2", "1..0", "0 passed, 0 failed"]);
        assert_eq!(report.errors, ["line 1: unsupported KTAP version 2"]);
    }

    #[test]
    fn summary_mismatch() {
        let report = parse(&lines(
            "KTAP version 1\n1..2\nok 1 a\nok 2 b\n1 passed, 1 failed",
        ));
        assert_eq!(
            report.verdict().problems,
            ["summary says '1 passed, 1 failed' but the results are 2 passed, 0 failed, 0 skipped"]
        );
    }

    #[test]
    fn summary_line_syntax() {
        let summary = |text: &str| parse_summary(text);
        assert_eq!(
            summary("4 passed, 0 failed"),
            Some(Summary {
                passed: 4,
                failed: 0,
                skipped: None
            })
        );
        assert_eq!(
            summary("tests: 4 passed, 1 failed, 2 skipped").map(|s| s.to_string()),
            Some("4 passed, 1 failed, 2 skipped".to_owned())
        );
        assert_eq!(summary("two words: 4 passed, 0 failed"), None);
        assert_eq!(summary("4 passed"), None);
        assert_eq!(summary("4 passed, 0 failed, 1 skipped, 2 more"), None);
        assert_eq!(summary("4 passed,0 failed"), None);
        assert_eq!(summary("x passed, 0 failed"), None);
    }
}
