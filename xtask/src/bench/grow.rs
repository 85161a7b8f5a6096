//! What growing a buffer the way `realloc` does costs: the `bench: grow` lines (a buffer of
//! 1 MiB doubled to 64 MiB, every step forced to move, every new page written), by `mremap`
//! (the page-table entries carried to the new place) and by copy (a new mapping, the contents
//! copied, the old one unmapped: what a kernel without mremap leaves), grouped over
//! repetitions, and ours against each Linux kernel.

use serde::Serialize;

use super::report::{
    Align, Method, Stats, Table, median, method_name, spread, time_or_instructions,
};

/// One growth: `steps` doublings from `from_kib` to `to_kib` in `elapsed_ns` (guest
/// nanoseconds, or guest instructions under icount), their grow calls taking `move_ns`.
#[derive(Clone, Debug, Serialize)]
pub struct GrowMeasurement {
    pub kernel: String,
    pub method: Method,
    pub cpus: u32,
    /// "mremap" or "copy".
    pub way: String,
    pub rep: u32,
    pub from_kib: u64,
    pub to_kib: u64,
    pub steps: u64,
    pub elapsed_ns: u64,
    pub move_ns: u64,
    /// Each step with the writes of its new pages, in order.
    pub step_ns: Vec<u64>,
}

/// One way of growing on one kernel over its repetitions.
#[derive(Clone, Debug, Serialize)]
pub struct GrowRow {
    pub kernel: String,
    pub method: Method,
    pub cpus: u32,
    pub way: String,
    pub from_kib: u64,
    pub to_kib: u64,
    pub steps: u64,
    pub reps: usize,
    /// The whole growth, the new pages' writes included.
    pub whole: Stats,
    /// The grow calls alone over the whole growth (median).
    pub moves: f64,
    /// The last step, the largest (median).
    pub last_step: f64,
}

impl GrowRow {
    /// The whole growth's median, per step.
    pub fn per_step(&self) -> f64 {
        self.whole.median / self.steps as f64
    }
}

/// Parses `bench: grow method=W rep=R from_kib=F to_kib=T steps=S elapsed_ns=E move_ns=M
/// step_ns=N,N,...`.
pub fn parse_line(line: &str, method: Method, cpus: u32) -> Result<GrowMeasurement, String> {
    let text = |key: &str| super::required_field(line, key);
    let number = |key: &str| super::number(line, key);
    let step_ns = text("step_ns")?
        .split(',')
        .map(|n| n.parse::<u64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| format!("step_ns= is not a list of numbers in {line:?}"))?;
    let measurement = GrowMeasurement {
        kernel: String::new(),
        method,
        cpus,
        way: text("method")?.to_owned(),
        rep: number("rep")? as u32,
        from_kib: number("from_kib")?,
        to_kib: number("to_kib")?,
        steps: number("steps")?,
        elapsed_ns: number("elapsed_ns")?,
        move_ns: number("move_ns")?,
        step_ns,
    };
    if measurement.steps == 0 || measurement.elapsed_ns == 0 {
        return Err(format!("no growth timed in {line:?}"));
    }
    if measurement.step_ns.len() as u64 != measurement.steps {
        return Err(format!("step_ns= does not list steps= steps in {line:?}"));
    }
    Ok(measurement)
}

/// The runs grouped by kernel, method, CPUs, way and sizes, in the order of `measurements`.
pub fn rows(measurements: &[GrowMeasurement]) -> Vec<GrowRow> {
    let same_group = |a: &GrowMeasurement, b: &GrowMeasurement| {
        a.kernel == b.kernel
            && a.method == b.method
            && a.cpus == b.cpus
            && a.way == b.way
            && (a.from_kib, a.to_kib, a.steps) == (b.from_kib, b.to_kib, b.steps)
    };
    super::group_by(measurements, same_group)
        .into_iter()
        .filter_map(|runs| {
            let values = |value: fn(&GrowMeasurement) -> u64| -> Vec<f64> {
                runs.iter().map(|run| value(run) as f64).collect()
            };
            let first = runs[0];
            Some(GrowRow {
                kernel: first.kernel.clone(),
                method: first.method,
                cpus: first.cpus,
                way: first.way.clone(),
                from_kib: first.from_kib,
                to_kib: first.to_kib,
                steps: first.steps,
                reps: runs.len(),
                whole: Stats::of(&values(|m| m.elapsed_ns))?,
                moves: median(&values(|m| m.move_ns))?,
                last_step: median(&values(|m| m.step_ns.last().copied().unwrap_or(0)))?,
            })
        })
        .collect()
}

/// "1→64 MiB" (or "512→4096 KiB"): a growth's sizes.
fn sizes(row: &GrowRow) -> String {
    if row.from_kib % 1024 == 0 && row.to_kib % 1024 == 0 {
        format!("{}→{} MiB", row.from_kib / 1024, row.to_kib / 1024)
    } else {
        format!("{}→{} KiB", row.from_kib, row.to_kib)
    }
}

/// The rows: kernel, method, CPUs, way, sizes, steps, repetitions, the whole growth, its
/// spread, per step, the last step and the grow calls alone.
pub fn table(rows: &[GrowRow]) -> Table {
    use Align::{Left, Right};
    let mut table = Table::new(&[
        ("kernel", Left),
        ("method", Left),
        ("cpus", Right),
        ("growth", Left),
        ("sizes", Left),
        ("steps", Right),
        ("reps", Right),
        ("whole growth", Right),
        ("spread", Left),
        ("per step", Right),
        ("last step", Right),
        ("grow calls", Right),
    ]);
    for r in rows {
        table.rows.push(vec![
            r.kernel.clone(),
            method_name(r.method).into(),
            r.cpus.to_string(),
            r.way.clone(),
            sizes(r),
            r.steps.to_string(),
            r.reps.to_string(),
            time_or_instructions(r.method, r.whole.median),
            spread(&r.whole),
            time_or_instructions(r.method, r.per_step()),
            time_or_instructions(r.method, r.last_step),
            time_or_instructions(r.method, r.moves),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_grow_line() {
        let line = "bench: grow method=mremap rep=1 from_kib=1024 to_kib=65536 steps=3 elapsed_ns=700 move_ns=70 step_ns=100,200,400";
        let m = parse_line(line, Method::Icount, 2).unwrap();
        assert_eq!((m.way.as_str(), m.rep, m.steps), ("mremap", 1, 3));
        assert_eq!((m.from_kib, m.to_kib, m.cpus), (1024, 65536, 2));
        assert_eq!((m.elapsed_ns, m.move_ns), (700, 70));
        assert_eq!(m.step_ns, [100, 200, 400]);
        let short = line.replace("step_ns=100,200,400", "step_ns=100,200");
        assert!(parse_line(&short, Method::Wall, 1).is_err());
        let bad = line.replace("step_ns=100,200,400", "step_ns=100,x,400");
        assert!(parse_line(&bad, Method::Wall, 1).is_err());
        assert!(parse_line("bench: grow method=copy rep=0", Method::Wall, 1).is_err());
    }

    #[test]
    fn rows_group_repetitions_by_kernel_and_way() {
        let run = |kernel: &str, way: &str, rep: u32, elapsed_ns: u64| GrowMeasurement {
            kernel: kernel.into(),
            method: Method::Icount,
            cpus: 2,
            way: way.into(),
            rep,
            from_kib: 1024,
            to_kib: 65536,
            steps: 6,
            elapsed_ns,
            move_ns: elapsed_ns / 10,
            step_ns: vec![elapsed_ns / 6; 6],
        };
        let rows = rows(&[
            run("ours", "mremap", 0, 6_000),
            run("ours", "copy", 0, 60_000),
            run("ours", "mremap", 1, 12_000),
            run("ours", "mremap", 2, 9_000),
            run("Linux 6.12", "mremap", 0, 18_000),
        ]);
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0].way.as_str(), rows[0].reps), ("mremap", 3));
        assert_eq!(rows[0].whole.median, 9_000.0);
        assert_eq!((rows[0].whole.min, rows[0].whole.max), (6_000.0, 12_000.0));
        assert_eq!(rows[0].per_step(), 1_500.0);
        assert_eq!(rows[0].moves, 900.0);
        assert_eq!(rows[1].way, "copy");
        let text = table(&rows).text();
        assert!(
            text.contains("1→64 MiB") && text.contains("1 500"),
            "{text}"
        );
    }
}
