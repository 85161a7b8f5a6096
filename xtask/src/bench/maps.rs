//! How long a read of /proc/self/maps takes: the `bench: maps` lines (complete reads, each an
//! open, reads to the end of file and a close, in a process with a few dozen VMAs, alone and
//! beside a thread in an mmap/mprotect/munmap storm), grouped over repetitions, and ours
//! against each Linux kernel.
//!
//! Each repetition gives per condition the median, 99th percentile and longest of its reads;
//! a row gives the median of the medians (with their spread), the median of the 99th
//! percentiles and the longest read of all. A kernel that reads maps under `mmap_lock` makes
//! the reader wait for the storm's writers and the writers for the reader; one that reads
//! without it (Linux since 6.17, and ours) should keep the storm's reads near the quiet ones.

use serde::Serialize;

use super::report::{
    Align, Method, Stats, Table, median, method_name, spread, time_or_instructions,
};

/// One repetition of one condition: `reads` reads of `lines` lines, their median, 99th
/// percentile and longest in guest nanoseconds (guest instructions under icount), and the
/// storm's calls during them.
#[derive(Clone, Debug, Serialize)]
pub struct MapsMeasurement {
    pub kernel: String,
    pub method: Method,
    pub cpus: u32,
    /// "quiet" or "storm".
    pub condition: String,
    /// Regions the program mapped for the reads (each a VMA).
    pub vmas: u64,
    pub rep: u32,
    pub reads: u64,
    pub median_ns: u64,
    pub p99_ns: u64,
    pub worst_ns: u64,
    /// Lines of the last read: the regions plus the program's own mappings.
    pub lines: u64,
    pub storm_ops: u64,
}

/// One condition of one kernel over its repetitions.
#[derive(Clone, Debug, Serialize)]
pub struct MapsRow {
    pub kernel: String,
    pub method: Method,
    pub cpus: u32,
    pub condition: String,
    pub vmas: u64,
    pub reps: usize,
    /// The repetitions' medians: their median, minimum and maximum.
    pub median: Stats,
    /// The median of the repetitions' 99th percentiles.
    pub p99: f64,
    /// The longest read of all repetitions.
    pub worst: u64,
    /// The fewest and most lines a repetition's last read had.
    pub lines: (u64, u64),
    /// The storm's calls per timed read (median over repetitions; 0 when quiet).
    pub storm_ops_per_read: f64,
}

/// Parses `bench: maps condition=C vmas=V rep=R reads=N median_ns=M p99_ns=P worst_ns=W
/// lines=L storm_ops=O`.
pub fn parse_line(line: &str, method: Method, cpus: u32) -> Result<MapsMeasurement, String> {
    let text = |key: &str| super::required_field(line, key);
    let number = |key: &str| super::number(line, key);
    let measurement = MapsMeasurement {
        kernel: String::new(),
        method,
        cpus,
        condition: text("condition")?.to_owned(),
        vmas: number("vmas")?,
        rep: number("rep")? as u32,
        reads: number("reads")?,
        median_ns: number("median_ns")?,
        p99_ns: number("p99_ns")?,
        worst_ns: number("worst_ns")?,
        lines: number("lines")?,
        storm_ops: number("storm_ops")?,
    };
    if measurement.reads == 0 || measurement.median_ns == 0 || measurement.lines == 0 {
        return Err(format!("no reads timed in {line:?}"));
    }
    Ok(measurement)
}

/// The runs grouped by kernel, method, CPUs, condition and VMAs, in the order of
/// `measurements`.
pub fn rows(measurements: &[MapsMeasurement]) -> Vec<MapsRow> {
    let same_group = |a: &MapsMeasurement, b: &MapsMeasurement| {
        a.kernel == b.kernel
            && a.method == b.method
            && a.cpus == b.cpus
            && a.condition == b.condition
            && a.vmas == b.vmas
    };
    super::group_by(measurements, same_group)
        .into_iter()
        .filter_map(|runs| {
            let values = |value: fn(&MapsMeasurement) -> f64| -> Vec<f64> {
                runs.iter().map(|run| value(run)).collect()
            };
            let first = runs[0];
            Some(MapsRow {
                kernel: first.kernel.clone(),
                method: first.method,
                cpus: first.cpus,
                condition: first.condition.clone(),
                vmas: first.vmas,
                reps: runs.len(),
                median: Stats::of(&values(|m| m.median_ns as f64))?,
                p99: median(&values(|m| m.p99_ns as f64))?,
                worst: runs.iter().map(|m| m.worst_ns).max()?,
                lines: (
                    runs.iter().map(|m| m.lines).min()?,
                    runs.iter().map(|m| m.lines).max()?,
                ),
                storm_ops_per_read: median(&values(|m| m.storm_ops as f64 / m.reads as f64))?,
            })
        })
        .collect()
}

/// The rows: kernel, method, CPUs, condition, VMAs, repetitions, lines, the median read, its
/// spread, the 99th percentile, the longest read and the storm's calls per read.
pub fn table(rows: &[MapsRow]) -> Table {
    use Align::{Left, Right};
    let mut table = Table::new(&[
        ("kernel", Left),
        ("method", Left),
        ("cpus", Right),
        ("condition", Left),
        ("VMAs", Right),
        ("reps", Right),
        ("lines", Right),
        ("median read", Right),
        ("spread", Left),
        ("p99", Right),
        ("worst", Right),
        ("storm calls/read", Right),
    ]);
    for r in rows {
        let lines = match r.lines {
            (fewest, most) if fewest == most => fewest.to_string(),
            (fewest, most) => format!("{fewest}-{most}"),
        };
        table.rows.push(vec![
            r.kernel.clone(),
            method_name(r.method).into(),
            r.cpus.to_string(),
            r.condition.clone(),
            r.vmas.to_string(),
            r.reps.to_string(),
            lines,
            time_or_instructions(r.method, r.median.median),
            spread(&r.median),
            time_or_instructions(r.method, r.p99),
            time_or_instructions(r.method, r.worst as f64),
            format!("{:.2}", r.storm_ops_per_read),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        kernel: &str,
        condition: &str,
        rep: u32,
        median_ns: u64,
        worst_ns: u64,
    ) -> MapsMeasurement {
        MapsMeasurement {
            kernel: kernel.into(),
            method: Method::Wall,
            cpus: 2,
            condition: condition.into(),
            vmas: 64,
            rep,
            reads: 200,
            median_ns,
            p99_ns: worst_ns / 2,
            worst_ns,
            lines: 72 + u64::from(rep),
            storm_ops: if condition == "storm" { 100 } else { 0 },
        }
    }

    #[test]
    fn parses_a_maps_line() {
        let line = "bench: maps condition=storm vmas=64 rep=1 reads=200 median_ns=152961 \
                    p99_ns=391784 worst_ns=493485 lines=73 storm_ops=28";
        let m = parse_line(line, Method::Icount, 2).unwrap();
        assert_eq!(
            (m.condition.as_str(), m.vmas, m.rep, m.reads),
            ("storm", 64, 1, 200)
        );
        assert_eq!(
            (m.median_ns, m.p99_ns, m.worst_ns),
            (152_961, 391_784, 493_485)
        );
        assert_eq!((m.lines, m.storm_ops, m.cpus), (73, 28, 2));
        assert_eq!(m.method, Method::Icount);
        assert!(parse_line("bench: maps condition=quiet vmas=64 rep=0", Method::Wall, 1).is_err());
        let none = "bench: maps condition=quiet vmas=64 rep=0 reads=0 median_ns=0 p99_ns=0 \
                    worst_ns=0 lines=0 storm_ops=0";
        assert!(parse_line(none, Method::Wall, 1).is_err());
        let bad = line.replace("median_ns=152961", "median_ns=x");
        assert!(
            parse_line(&bad, Method::Wall, 1)
                .unwrap_err()
                .contains("median_ns=")
        );
    }

    #[test]
    fn rows_take_the_median_of_medians_and_the_worst_of_worsts() {
        let runs = vec![
            run("ours", "quiet", 0, 30_000, 90_000),
            run("ours", "storm", 0, 40_000, 400_000),
            run("ours", "quiet", 1, 10_000, 50_000),
            run("ours", "storm", 1, 35_000, 900_000),
            run("ours", "quiet", 2, 20_000, 70_000),
            run("ours", "storm", 2, 45_000, 100_000),
            run("Linux 6.12", "quiet", 0, 150_000, 500_000),
        ];
        let rows = rows(&runs);
        assert_eq!(rows.len(), 3);
        let quiet = &rows[0];
        assert_eq!((quiet.condition.as_str(), quiet.reps), ("quiet", 3));
        assert_eq!(
            quiet.median,
            Stats {
                median: 20_000.0,
                min: 10_000.0,
                max: 30_000.0
            }
        );
        assert_eq!(quiet.p99, 35_000.0);
        assert_eq!(quiet.worst, 90_000);
        assert_eq!(quiet.lines, (72, 74));
        assert_eq!(quiet.storm_ops_per_read, 0.0);
        let storm = &rows[1];
        assert_eq!((storm.median.median, storm.worst), (40_000.0, 900_000));
        assert_eq!(storm.storm_ops_per_read, 0.5);
        assert_eq!(rows[2].kernel, "Linux 6.12");
        let text = table(&rows).text();
        assert!(
            text.contains("20.0 µs") && text.contains("900.0 µs"),
            "{text}"
        );
        assert!(text.contains("72-74"), "{text}");
    }
}
