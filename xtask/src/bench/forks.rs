//! What fork costs: the `bench: fork` lines (rounds of fork, the child's exit and the parent's
//! wait4, in a process with many VMAs or many pages), grouped over repetitions, and what one
//! more VMA or page adds to a round.
//!
//! Each case is `VxP`: `V` regions (VMAs) of `max(P, 1)` pages with `P` pages of each written
//! (`P = 0`: a page each, never touched). The breakdown compares the cases of one kernel with
//! the `1x1` one: `Nx1` gives what one more VMA with its page costs, `Nx0` one more VMA without
//! a page, `1xN` one more page in the same VMA.

use serde::Serialize;

use super::report::{
    Align, Method, NONE, Stats, Table, median, method_name, spread, time_or_instructions,
};

/// One run of one fork case: `forks` rounds in `elapsed_ns` (guest nanoseconds, or guest
/// instructions under icount), the parent's fork calls taking `fork_ns` of it.
#[derive(Clone, Debug, Serialize)]
pub struct ForkMeasurement {
    pub kernel: String,
    pub method: Method,
    pub cpus: u32,
    pub vmas: u64,
    pub pages: u64,
    pub rep: u32,
    pub forks: u64,
    pub elapsed_ns: u64,
    pub fork_ns: u64,
}

/// One fork case of one kernel over its repetitions.
#[derive(Clone, Debug, Serialize)]
pub struct ForkRow {
    pub kernel: String,
    pub method: Method,
    pub cpus: u32,
    pub vmas: u64,
    pub pages: u64,
    pub reps: usize,
    /// A round (fork, exit, wait): nanoseconds, or instructions under icount.
    pub round: Stats,
    /// The parent's fork call alone (median).
    pub fork_call: f64,
}

/// What one more VMA or page adds to a round, for one kernel and method (medians of the
/// cases against the `1x1` case).
#[derive(Clone, Debug, Serialize)]
pub struct ForkBreakdown {
    pub kernel: String,
    pub method: Method,
    pub cpus: u32,
    /// The round of the `1x1` case: process creation, exit and wait with a small address space.
    pub base: f64,
    /// Per VMA with one written page (from the `Nx1` case with the most VMAs).
    pub per_vma: Option<f64>,
    /// Per VMA without a page (`Nx0`).
    pub per_empty_vma: Option<f64>,
    /// Per written page in one VMA (`1xN`).
    pub per_page: Option<f64>,
}

/// Parses `bench: fork vmas=V pages=P rep=R forks=N elapsed_ns=E fork_ns=F`.
pub fn parse_line(line: &str, method: Method, cpus: u32) -> Result<ForkMeasurement, String> {
    let number = |key: &str| -> Result<u64, String> {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
            .ok_or_else(|| format!("no {key}= in {line:?}"))?
            .parse()
            .map_err(|_| format!("{key}= is not a number in {line:?}"))
    };
    let measurement = ForkMeasurement {
        kernel: String::new(),
        method,
        cpus,
        vmas: number("vmas")?,
        pages: number("pages")?,
        rep: number("rep")? as u32,
        forks: number("forks")?,
        elapsed_ns: number("elapsed_ns")?,
        fork_ns: number("fork_ns")?,
    };
    if measurement.forks == 0 || measurement.elapsed_ns == 0 {
        return Err(format!("no forks timed in {line:?}"));
    }
    Ok(measurement)
}

/// The runs grouped by kernel, method, CPUs and case, in the order of `measurements`.
pub fn rows(measurements: &[ForkMeasurement]) -> Vec<ForkRow> {
    let mut rows: Vec<ForkRow> = Vec::new();
    for first in measurements {
        let same = |m: &&ForkMeasurement| {
            m.kernel == first.kernel
                && m.method == first.method
                && m.cpus == first.cpus
                && m.vmas == first.vmas
                && m.pages == first.pages
        };
        if rows.iter().any(|r| {
            r.kernel == first.kernel
                && r.method == first.method
                && r.cpus == first.cpus
                && r.vmas == first.vmas
                && r.pages == first.pages
        }) {
            continue;
        }
        let runs: Vec<&ForkMeasurement> = measurements.iter().filter(same).collect();
        let per_round = |value: fn(&ForkMeasurement) -> u64| -> Vec<f64> {
            runs.iter()
                .map(|m| value(m) as f64 / m.forks as f64)
                .collect()
        };
        let (Some(round), Some(fork_call)) = (
            Stats::of(&per_round(|m| m.elapsed_ns)),
            median(&per_round(|m| m.fork_ns)),
        ) else {
            continue;
        };
        rows.push(ForkRow {
            kernel: first.kernel.clone(),
            method: first.method,
            cpus: first.cpus,
            vmas: first.vmas,
            pages: first.pages,
            reps: runs.len(),
            round,
            fork_call,
        });
    }
    rows
}

/// One breakdown per kernel, method and CPU count that has the `1x1` case.
pub fn breakdowns(rows: &[ForkRow]) -> Vec<ForkBreakdown> {
    let mut out = Vec::new();
    for base in rows.iter().filter(|r| r.vmas == 1 && r.pages == 1) {
        let peers = || {
            rows.iter().filter(|r| {
                r.kernel == base.kernel && r.method == base.method && r.cpus == base.cpus
            })
        };
        // The case with the most of what it adds, per added unit against the base.
        let per_unit = |pick: &dyn Fn(&ForkRow) -> Option<u64>| {
            peers()
                .filter_map(|r| Some((pick(r)?, r)))
                .filter(|(units, _)| *units > 1)
                .max_by_key(|(units, _)| *units)
                .map(|(units, r)| (r.round.median - base.round.median) / (units - 1) as f64)
        };
        out.push(ForkBreakdown {
            kernel: base.kernel.clone(),
            method: base.method,
            cpus: base.cpus,
            base: base.round.median,
            per_vma: per_unit(&|r| (r.pages == 1).then_some(r.vmas)),
            per_empty_vma: per_unit(&|r| (r.pages == 0).then_some(r.vmas)),
            per_page: per_unit(&|r| (r.vmas == 1).then_some(r.pages)),
        });
    }
    out
}

/// The rows: kernel, method, CPUs, case, repetitions, a round, its spread, the fork call.
pub fn table(rows: &[ForkRow]) -> Table {
    use Align::{Left, Right};
    let mut table = Table::new(&[
        ("kernel", Left),
        ("method", Left),
        ("cpus", Right),
        ("VMAs", Right),
        ("pages each", Right),
        ("reps", Right),
        ("fork+exit+wait", Right),
        ("spread", Left),
        ("fork call", Right),
    ]);
    for r in rows {
        table.rows.push(vec![
            r.kernel.clone(),
            method_name(r.method).into(),
            r.cpus.to_string(),
            r.vmas.to_string(),
            r.pages.to_string(),
            r.reps.to_string(),
            time_or_instructions(r.method, r.round.median),
            spread(&r.round),
            time_or_instructions(r.method, r.fork_call),
        ]);
    }
    table
}

/// The breakdowns: what a round costs with a small address space, and per VMA and page more.
pub fn breakdown_table(breakdowns: &[ForkBreakdown]) -> Table {
    use Align::{Left, Right};
    let mut table = Table::new(&[
        ("kernel", Left),
        ("method", Left),
        ("cpus", Right),
        ("1 VMA of 1 page", Right),
        ("per VMA with a page", Right),
        ("per VMA without", Right),
        ("per page", Right),
    ]);
    for b in breakdowns {
        let optional = |value: Option<f64>| {
            value.map_or_else(|| NONE.into(), |v| time_or_instructions(b.method, v))
        };
        table.rows.push(vec![
            b.kernel.clone(),
            method_name(b.method).into(),
            b.cpus.to_string(),
            time_or_instructions(b.method, b.base),
            optional(b.per_vma),
            optional(b.per_empty_vma),
            optional(b.per_page),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kernel: &str, vmas: u64, pages: u64, rep: u32, per_fork: u64) -> ForkMeasurement {
        ForkMeasurement {
            kernel: kernel.into(),
            method: Method::Icount,
            cpus: 2,
            vmas,
            pages,
            rep,
            forks: 10,
            elapsed_ns: per_fork * 10,
            fork_ns: per_fork * 4,
        }
    }

    #[test]
    fn parses_a_fork_line() {
        let line = "bench: fork vmas=100 pages=1 rep=2 forks=16 elapsed_ns=3200 fork_ns=1600";
        let m = parse_line(line, Method::Wall, 4).unwrap();
        assert_eq!((m.vmas, m.pages, m.rep, m.forks), (100, 1, 2, 16));
        assert_eq!((m.elapsed_ns, m.fork_ns, m.cpus), (3200, 1600, 4));
        assert!(parse_line("bench: fork vmas=1 pages=1 rep=0", Method::Wall, 1).is_err());
        let none = "bench: fork vmas=1 pages=1 rep=0 forks=0 elapsed_ns=0 fork_ns=0";
        assert!(parse_line(none, Method::Wall, 1).is_err());
    }

    #[test]
    fn rows_group_repetitions_and_breakdowns_divide_by_the_units_added() {
        let runs = vec![
            run("ours", 1, 1, 0, 100_000),
            run("ours", 1, 1, 1, 120_000),
            run("ours", 1, 1, 2, 110_000),
            run("ours", 101, 1, 0, 610_000),
            run("ours", 10_001, 0, 0, 3_110_000),
            run("ours", 1, 1_001, 0, 310_000),
            run("Linux 6.1", 1, 1, 0, 400_000),
        ];
        let rows = rows(&runs);
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[0].reps, 3);
        assert_eq!(rows[0].round.median, 110_000.0);
        assert_eq!(rows[0].fork_call, 44_000.0);
        let breakdowns = breakdowns(&rows);
        assert_eq!(breakdowns.len(), 2);
        let ours = &breakdowns[0];
        assert_eq!(ours.base, 110_000.0);
        assert_eq!(ours.per_vma, Some(5_000.0));
        assert_eq!(ours.per_empty_vma, Some(300.0));
        assert_eq!(ours.per_page, Some(200.0));
        assert_eq!(breakdowns[1].per_vma, None);
        let text = breakdown_table(&breakdowns).text();
        assert!(text.contains("5 000") && text.contains("—"), "{text}");
        assert!(table(&rows).text().contains("110 000"));
    }
}
