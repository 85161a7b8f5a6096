//! `cargo xtask check-breaks`: the mutation check of the VMA lock's loom models
//! (kernel/libs/vmalock). Every check of the protocol can be removed (`broken!("NAME")` in the
//! crate's src/, `loom_break_selected("NAME")` in its tests/loom.rs); every removal must make at
//! least one loom model fail, or the models have a blind spot.
//!
//! The loom test binary is built once, exactly as the loom step of `cargo xtask test` builds it
//! (same target directory and flags, so after that step it is already there): in loom builds a
//! break is selected at run time by the environment variable `VMALOCK_BREAK`. Each break then
//! costs the runs of single models (`--exact`) until one fails, starting with the model that
//! catches it fastest ([`FIRST_CATCHER`], a hint only: a break it misses is tried on every
//! other model), several breaks at a time. The models that caught a break are run once more
//! with no break, so that a model failing on its own cannot pass for a catch.
//!
//! The break names come from the sources, so a new `broken!` site is checked without being
//! listed here.

use crate::artifacts;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Crates with loom models of their lock-free protocols, in `tests/loom.rs`: the loom steps of
/// `cargo xtask test` build them together, and so does the check, so that cargo unifies the
/// same features and the check reuses their build.
pub const LOOM_CRATES: &[&str] = &["rcu", "slab", "vmtree", "vmalock"];
/// The crate under the check, relative to the workspace root.
const CRATE_DIR: &str = "kernel/libs/vmalock";
/// Which model catches each break fastest (each in well under a second at the bound of 2),
/// tried first.
const FIRST_CATCHER: &[(&str, &str)] = &[
    ("attach_relaxed", "reattach_ordering"),
    ("clear_relaxed", "fork_vs_write_fault"),
    ("copy_lock", "duplicate_does_not_copy_lock_state"),
    ("detach_no_wait", "detach_waits_for_transient_readers"),
    ("end_read_relaxed", "detach_waits_for_transient_readers"),
    ("fork_no_write_lock", "fork_vs_write_fault"),
    ("inc_relaxed", "reattach_ordering"),
    ("mm_check", "reuse_other_mm_while_locking"),
    ("no_limit", "reader_limit"),
    ("no_wake", "detach_waits_for_transient_readers"),
    ("range_check", "reuse_same_mm_ending_at_the_address"),
    ("range_end_inclusive", "reuse_same_mm_ending_at_the_address"),
    ("range_no_end", "reuse_same_mm_ending_at_the_address"),
    ("recheck_relaxed", "fork_vs_write_fault"),
    ("seq_recheck", "fork_vs_write_fault"),
    ("unlock_relaxed", "fork_vs_write_fault"),
    ("wake_via_mm", "detach_waits_for_transient_readers"),
    ("writer_no_wait", "fork_vs_write_fault"),
];
/// The preemption bound of the models, as in the loom step of `cargo xtask test`.
const PREEMPTIONS: &str = "2";
/// One model run under a break must end within this; a run that does not counts as a catch
/// only if it fails, so a hang is reported as such.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// What one break's check found.
enum Verdict {
    Caught(String),
    Missed,
    Hung(String),
}

/// Runs the check for `only` (every break when empty). Prints one line per break; returns
/// whether every break made a model fail.
pub fn check(only: &[String]) -> Result<bool, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let binary = build_models(&root.join(CRATE_DIR))?;
    let models = list_models(&binary)?;
    let all = break_names(&root.join(CRATE_DIR))?;
    let breaks: Vec<String> = if only.is_empty() {
        all.into_iter().collect()
    } else {
        for name in only {
            if !all.contains(name) {
                return Err(format!("{name}: no such break in {CRATE_DIR}"));
            }
        }
        only.to_vec()
    };

    let results = in_parallel(&breaks, |name| {
        let started = Instant::now();
        let verdict = find_catcher(&binary, &models, name);
        let line = match &verdict {
            Verdict::Caught(model) => format!("{name}: caught by {model}"),
            Verdict::Missed => format!("{name}: NO MODEL FAILED"),
            Verdict::Hung(model) => format!("{name}: {model} did not end within {RUN_LIMIT:?}"),
        };
        println!("{line} ({:.1} s)", started.elapsed().as_secs_f64());
        verdict
    });
    let mut ok = results.iter().all(|v| matches!(v, Verdict::Caught(_)));
    let catchers: Vec<String> = results
        .into_iter()
        .filter_map(|v| match v {
            Verdict::Caught(model) => Some(model),
            _ => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for (model, passed) in catchers
        .iter()
        .zip(in_parallel(&catchers, |m| run_model(&binary, m, None)))
    {
        if passed? != Some(true) {
            println!("{model}: FAILS WITH NO BREAK: its catches prove nothing");
            ok = false;
        }
    }
    Ok(ok)
}

/// `f` of every item, on as many threads as the host has cores; the results in `items`' order.
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = Mutex::new(items.iter().enumerate());
    let results = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let Some((index, item)) = next.lock().unwrap().next() else {
                        break;
                    };
                    let result = f(item);
                    results.lock().unwrap().push((index, result));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

/// The first model that fails under `name`: its hinted catcher first, then the others.
fn find_catcher(binary: &Path, models: &[String], name: &str) -> Verdict {
    let hint = FIRST_CATCHER
        .iter()
        .find(|(b, _)| *b == name)
        .map(|(_, m)| *m)
        .filter(|m| models.iter().any(|model| model == m));
    let order = hint.into_iter().chain(
        models
            .iter()
            .map(String::as_str)
            .filter(|m| Some(*m) != hint),
    );
    let mut hung = None;
    for model in order {
        match run_model(binary, model, Some(name)) {
            Ok(Some(false)) => return Verdict::Caught(model.to_owned()),
            Ok(Some(true)) => {}
            Ok(None) => hung = Some(model.to_owned()),
            Err(e) => {
                println!("{name}: {e}");
                return Verdict::Missed;
            }
        }
    }
    hung.map_or(Verdict::Missed, Verdict::Hung)
}

/// Runs one model, with the check `removed` taken out; `Some(passed)`, or `None` if it did not
/// end within [`RUN_LIMIT`] (it is killed).
fn run_model(binary: &Path, model: &str, removed: Option<&str>) -> Result<Option<bool>, String> {
    let mut command = Command::new(binary);
    command
        .args(["--exact", model, "--test-threads", "1"])
        .env("LOOM_MAX_PREEMPTIONS", PREEMPTIONS)
        .env_remove("VMALOCK_BREAK")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(name) = removed {
        command.env("VMALOCK_BREAK", name);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(Some(status.success()));
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Cargo, set up to build the loom models (`--cfg loom`) in a target directory of their own:
/// the flag rebuilds everything it touches. The loom steps of `cargo xtask test` and this check
/// share it, so the check finds the models built.
pub fn loom_command(cargo: &str) -> Command {
    let mut command = Command::new(cargo);
    command
        .env("CARGO_TARGET_DIR", artifacts::target_dir().join("loom"))
        .env("RUSTFLAGS", "--cfg loom");
    command
}

/// Builds the loom test binaries (of every crate in [`LOOM_CRATES`]) and returns vmalock's.
fn build_models(crate_dir: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = loom_command(&cargo);
    command.args(["test", "--release", "--test", "loom", "--no-run"]);
    for name in LOOM_CRATES {
        command.args(["--package", name]);
    }
    let manifest = crate_dir.join("Cargo.toml");
    let output = command
        .args(["--message-format", "json"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err("the vmalock loom models do not build".into());
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["target"]["name"] == "loom"
                && message["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path())
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo named no loom test binary".into())
}

/// The models in the test binary.
fn list_models(binary: &Path) -> Result<Vec<String>, String> {
    let output = Command::new(binary)
        .arg("--list")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let models: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect();
    if models.is_empty() {
        return Err(format!("{} lists no model", binary.display()));
    }
    Ok(models)
}

/// Every break named in the crate: `broken!("NAME")` in src/, `loom_break_selected("NAME")` in
/// tests/loom.rs.
fn break_names(crate_dir: &Path) -> Result<BTreeSet<String>, String> {
    let mut files = vec![crate_dir.join("tests/loom.rs")];
    let src = crate_dir.join("src");
    for entry in std::fs::read_dir(&src).map_err(|e| format!("{}: {e}", src.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|x| x == "rs") {
            files.push(path);
        }
    }
    let mut names = BTreeSet::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        for marker in ["broken!(\"", "loom_break_selected(\""] {
            for (at, _) in text.match_indices(marker) {
                let rest = &text[at + marker.len()..];
                if let Some(end) = rest.find('"') {
                    names.insert(rest[..end].to_owned());
                }
            }
        }
    }
    // The macro's own definition and docs name no break.
    names.remove("name");
    names.remove("NAME");
    Ok(names)
}
