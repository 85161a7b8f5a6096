//! Running QEMU: captured runs with a timeout, and interactive runs on the terminal.
//!
//! Every QEMU process started here is reaped before the call returns, whatever happens: on
//! timeout, on Ctrl-C, on an error, or on a panic, it is killed and waited for. The private
//! copy of the UEFI variable store is removed afterwards.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, LineWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use crate::find::Qemu;
use crate::ktap;
use crate::outcome::Outcome;
use crate::profile::{Profile, SerialIo};
use crate::sigint::SigintGuard;

/// How often a captured run checks whether QEMU exited or the timeout passed.
const POLL: Duration = Duration::from_millis(20);

/// How long to wait for the rest of QEMU's output once it has exited. Only a process that
/// inherited QEMU's pipes and outlives it can keep them open this long.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Whether and how a captured run shows the guest's serial output while it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Echo {
    /// Show nothing.
    #[default]
    None,
    /// Print each line to standard output, after the given prefix (such as `"[bios-smp4] "`).
    Prefixed(String),
    /// Print each line to standard output as it is.
    Raw,
}

impl Echo {
    /// The text to print for one serial line, if any.
    fn render(&self, line: &str) -> Option<String> {
        match self {
            Echo::None => None,
            Echo::Prefixed(prefix) => Some(format!("{prefix}{line}\n")),
            Echo::Raw => Some(format!("{line}\n")),
        }
    }
}

/// Options for [`Qemu::run`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RunOptions {
    /// Kill QEMU after this long (`None`: wait forever).
    pub timeout: Option<Duration>,
    /// Kill QEMU when the guest has printed nothing for this long (`None`: no limit): a hang
    /// is caught long before the overall timeout.
    pub silence_timeout: Option<Duration>,
    /// Whether to show the serial output live.
    pub echo: Echo,
    /// A file that receives a copy of the serial output, line by line as it arrives (its
    /// directory is created if needed).
    pub serial_log: Option<PathBuf>,
    /// Text typed on the guest's COM1, in order, each once its cue has arrived. With any, QEMU's
    /// standard input is a pipe, open until QEMU exits; without, it is empty.
    pub input: Vec<Typed>,
}

/// Text to type on the guest's serial line once a line of output holding `cue` has arrived
/// after the previous text was typed (an empty cue: at once).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Typed {
    /// What a whole serial line must contain.
    pub cue: String,
    /// The bytes sent (a `\n` ends a command line; `\x03` is Ctrl-C).
    pub text: Vec<u8>,
}

/// What a captured run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunResult {
    /// How QEMU ended.
    pub outcome: Outcome,
    /// The guest's serial output, one entry per line, without line terminators (`\r\n` or
    /// `\n`); invalid UTF-8 is replaced with U+FFFD; a final line without a newline is kept.
    pub serial: Vec<String>,
    /// What QEMU wrote to its standard error (its own warnings and errors).
    pub stderr: String,
    /// From starting QEMU until it exited or was killed.
    pub elapsed: Duration,
}

impl RunResult {
    /// The last `n` serial lines (fewer if there are fewer), for showing where a run stopped.
    pub fn last_lines(&self, n: usize) -> &[String] {
        &self.serial[self.serial.len().saturating_sub(n)..]
    }

    /// The KTAP report in the serial output.
    pub fn ktap(&self) -> ktap::Report {
        ktap::parse(&self.serial)
    }
}

/// Why a run could not be carried out. (How the guest fared is an [`Outcome`], not an error.)
#[derive(Debug)]
pub enum RunError {
    /// The disk image does not exist.
    ImageMissing {
        /// The image.
        path: PathBuf,
    },
    /// A UEFI profile was asked for but no OVMF firmware was found.
    OvmfMissing {
        /// The profile's name.
        profile: String,
    },
    /// The OVMF variable store could not be copied.
    OvmfVarsCopy {
        /// The template that was copied.
        from: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// QEMU could not be started.
    Spawn {
        /// The QEMU binary.
        binary: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The serial log (or, for interactive runs, its directory) could not be written.
    SerialLog {
        /// The log file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Another system call failed while supervising QEMU.
    Io {
        /// What was being done, such as "waiting for QEMU".
        context: &'static str,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::ImageMissing { path } => {
                write!(f, "disk image {} does not exist", path.display())
            }
            RunError::OvmfMissing { profile } => write!(
                f,
                "profile {profile} boots with UEFI, but OVMF firmware is missing \
                 (not found; OVMF_CODE and OVMF_VARS name it)"
            ),
            RunError::OvmfVarsCopy { from, source } => write!(
                f,
                "could not copy the OVMF variable store {}: {source}",
                from.display()
            ),
            RunError::Spawn { binary, source } => {
                write!(f, "could not start {}: {source}", binary.display())
            }
            RunError::SerialLog { path, source } => {
                write!(f, "could not write serial log {}: {source}", path.display())
            }
            RunError::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::ImageMissing { .. } | RunError::OvmfMissing { .. } => None,
            RunError::OvmfVarsCopy { source, .. }
            | RunError::Spawn { source, .. }
            | RunError::SerialLog { source, .. }
            | RunError::Io { source, .. } => Some(source),
        }
    }
}

/// A running QEMU that is killed and reaped if dropped before it was waited for.
struct ChildGuard {
    child: Child,
    reaped: bool,
}

impl ChildGuard {
    /// Spawns `command`.
    fn spawn(command: &mut Command, binary: &Path) -> Result<ChildGuard, RunError> {
        let child = command.spawn().map_err(|source| RunError::Spawn {
            binary: binary.to_owned(),
            source,
        })?;
        Ok(ChildGuard {
            child,
            reaped: false,
        })
    }

    /// Waits for the process to exit.
    fn wait(&mut self) -> Result<ExitStatus, RunError> {
        let status = self.child.wait().map_err(|source| RunError::Io {
            context: "waiting for QEMU",
            source,
        })?;
        self.reaped = true;
        Ok(status)
    }

    /// The exit status if the process has exited.
    fn try_wait(&mut self) -> Result<Option<ExitStatus>, RunError> {
        let status = self.child.try_wait().map_err(|source| RunError::Io {
            context: "checking on QEMU",
            source,
        })?;
        self.reaped |= status.is_some();
        Ok(status)
    }

    /// Kills the process (SIGKILL) and reaps it.
    fn kill(&mut self) -> Result<(), RunError> {
        // An error means it has exited already, which `wait` then reports.
        let _ = self.child.kill();
        self.wait().map(drop)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts a named thread.
fn spawn_thread(name: &str, body: impl FnOnce() + Send + 'static) -> Result<(), RunError> {
    thread::Builder::new()
        .name(name.to_owned())
        .spawn(body)
        .map(drop)
        .map_err(|source| RunError::Io {
            context: "starting a thread to read QEMU's output",
            source,
        })
}

/// One line of output as collected: trailing `\n` and `\r` removed, decoded lossily.
fn decode_line(mut bytes: &[u8]) -> String {
    while let [rest @ .., b'\n' | b'\r'] = bytes {
        bytes = rest;
    }
    String::from_utf8_lossy(bytes).into_owned()
}

/// Sends each line of `input` to `lines` until end of file or a read error (which is sent too).
fn read_lines(input: impl Read, lines: &Sender<io::Result<String>>) {
    let mut reader = BufReader::new(input);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let item = match reader.read_until(b'\n', &mut buf) {
            Ok(0) => return,
            Ok(_) => Ok(decode_line(&buf)),
            Err(e) => Err(e),
        };
        let failed = item.is_err();
        if lines.send(item).is_err() || failed {
            return;
        }
    }
}

/// The serial log file of a captured run.
struct SerialLog {
    path: PathBuf,
    writer: LineWriter<File>,
    /// The first write error; writing stops there and the run reports it at the end.
    error: Option<io::Error>,
}

impl SerialLog {
    fn create(path: &Path) -> Result<SerialLog, RunError> {
        let failed = |source| RunError::SerialLog {
            path: path.to_owned(),
            source,
        };
        create_parent_dir(path).map_err(failed)?;
        let file = File::create(path).map_err(failed)?;
        Ok(SerialLog {
            path: path.to_owned(),
            writer: LineWriter::new(file),
            error: None,
        })
    }

    fn write(&mut self, line: &str) {
        if self.error.is_none()
            && let Err(e) = writeln!(self.writer, "{line}")
        {
            self.error = Some(e);
        }
    }

    fn finish(mut self) -> Result<(), RunError> {
        match self.error.take().map_or_else(|| self.writer.flush(), Err) {
            Ok(()) => Ok(()),
            Err(source) => Err(RunError::SerialLog {
                path: self.path,
                source,
            }),
        }
    }
}

/// Creates the directory `path` goes into, if it has one.
fn create_parent_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => fs::create_dir_all(dir),
        _ => Ok(()),
    }
}

/// Gathers the serial lines of a captured run, echoing and logging them as they come.
struct Collector<'a> {
    echo: &'a Echo,
    log: Option<SerialLog>,
    lines: Vec<String>,
    /// Problems reading QEMU's output, reported with its standard error.
    notes: String,
}

impl Collector<'_> {
    fn accept(&mut self, item: io::Result<String>) {
        match item {
            Ok(line) => {
                if let Some(text) = self.echo.render(&line) {
                    // Echo is best effort: a closed standard output must not end the run.
                    let mut out = io::stdout().lock();
                    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
                }
                if let Some(log) = &mut self.log {
                    log.write(&line);
                }
                self.lines.push(line);
            }
            Err(e) => self
                .notes
                .push_str(&format!("(reading QEMU's serial output failed: {e})\n")),
        }
    }

    /// Takes what is still coming on `lines`, giving up after [`DRAIN_GRACE`] of silence.
    fn drain(&mut self, lines: &Receiver<io::Result<String>>) {
        while let Ok(item) = lines.recv_timeout(DRAIN_GRACE) {
            self.accept(item);
        }
    }
}

/// How the supervision loop of a captured run ended.
enum End {
    Exited(ExitStatus),
    TimedOut,
    Interrupted,
}

impl Qemu {
    /// Runs `image` on `profile` with the serial output captured, and waits for QEMU to exit,
    /// at most `opts.timeout`.
    ///
    /// QEMU's standard input is empty. On timeout QEMU is killed and the outcome is
    /// [`Outcome::TimedOut`]; on Ctrl-C it is killed and the outcome is [`Outcome::Killed`].
    /// Errors are about carrying out the run; how the guest fared is in the result.
    pub fn run(
        &self,
        profile: &Profile,
        image: &Path,
        opts: &RunOptions,
    ) -> Result<RunResult, RunError> {
        let log = opts
            .serial_log
            .as_deref()
            .map(SerialLog::create)
            .transpose()?;
        let mut command = self.command(profile, image, SerialIo::Captured)?;
        if !opts.input.is_empty() {
            command.command_mut().stdin(Stdio::piped());
        }
        let sigint = SigintGuard::install().map_err(|source| RunError::Io {
            context: "installing a SIGINT handler",
            source,
        })?;
        let started = Instant::now();
        let mut child = ChildGuard::spawn(command.command_mut(), &self.binary)?;
        let (Some(stdout), Some(mut stderr)) =
            (child.child.stdout.take(), child.child.stderr.take())
        else {
            return Err(RunError::Io {
                context: "connecting to QEMU",
                source: io::Error::other("standard output or error is not piped"),
            });
        };
        // Kept until QEMU exits, so that the guest never sees its input end.
        let mut stdin = child.child.stdin.take();
        let mut typing = opts.input.iter().peekable();
        // The serial lines that arrived since the last text was typed start here.
        let mut unseen = 0;

        let (line_tx, line_rx) = mpsc::channel();
        spawn_thread("qemu-serial", move || read_lines(stdout, &line_tx))?;
        let (err_tx, err_rx) = mpsc::channel();
        spawn_thread("qemu-stderr", move || {
            let mut bytes = Vec::new();
            let mut text = match stderr.read_to_end(&mut bytes) {
                Ok(_) => String::new(),
                Err(e) => format!("(reading QEMU's standard error failed: {e})\n"),
            };
            text.insert_str(0, &String::from_utf8_lossy(&bytes));
            // The run may have given up waiting; then nobody listens any more.
            let _ = err_tx.send(text);
        })?;

        let mut collector = Collector {
            echo: &opts.echo,
            log,
            lines: Vec::new(),
            notes: String::new(),
        };
        let deadline = opts.timeout.map(|timeout| started + timeout);
        let mut last_output = started;
        let mut serial_open = true;
        let end = loop {
            while let (Some(next), Some(pipe)) = (typing.peek(), stdin.as_mut()) {
                let cued = next.cue.is_empty()
                    || collector.lines[unseen..]
                        .iter()
                        .any(|line| line.contains(&next.cue));
                if !cued {
                    break;
                }
                unseen = collector.lines.len();
                // A guest that stopped reading ends the typing, not the run.
                if pipe
                    .write_all(&next.text)
                    .and_then(|()| pipe.flush())
                    .is_err()
                {
                    stdin = None;
                }
                typing.next();
            }
            if serial_open {
                match line_rx.recv_timeout(POLL) {
                    Ok(item) => {
                        collector.accept(item);
                        last_output = Instant::now();
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => serial_open = false,
                }
            } else {
                thread::sleep(POLL);
            }
            if let Some(status) = child.try_wait()? {
                break End::Exited(status);
            }
            if sigint.interrupted() {
                child.kill()?;
                break End::Interrupted;
            }
            let silent_too_long = opts
                .silence_timeout
                .is_some_and(|limit| last_output.elapsed() >= limit);
            if silent_too_long || deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                child.kill()?;
                break End::TimedOut;
            }
        };
        let elapsed = started.elapsed();
        collector.drain(&line_rx);
        let mut stderr = err_rx.recv_timeout(DRAIN_GRACE).unwrap_or_default();
        stderr.push_str(&collector.notes);
        if let Some(log) = collector.log.take() {
            log.finish()?;
        }

        let outcome = match end {
            End::Exited(status) => Outcome::from_status(status),
            End::TimedOut => Outcome::TimedOut,
            End::Interrupted => Outcome::Killed,
        };
        Ok(RunResult {
            outcome,
            serial: collector.lines,
            stderr,
            elapsed,
        })
    }

    /// Runs `image` on `profile` on the caller's terminal: keystrokes go to the guest's COM1,
    /// its output to the terminal and to `log` (whose directory is created if needed). Ctrl-C
    /// ends QEMU, which gives [`Outcome::Killed`]. Waits, without a timeout, until QEMU exits.
    pub fn run_interactive(
        &self,
        profile: &Profile,
        image: &Path,
        log: &Path,
    ) -> Result<Outcome, RunError> {
        create_parent_dir(log).map_err(|source| RunError::SerialLog {
            path: log.to_owned(),
            source,
        })?;
        let mut command = self.command(
            profile,
            image,
            SerialIo::Interactive {
                log: log.to_owned(),
            },
        )?;
        let sigint = SigintGuard::install().map_err(|source| RunError::Io {
            context: "installing a SIGINT handler",
            source,
        })?;
        let mut child = ChildGuard::spawn(command.command_mut(), &self.binary)?;
        let outcome = Outcome::from_status(child.wait()?);
        // QEMU exits with status 0 when a signal asks it to quit.
        Ok(match outcome {
            Outcome::UnexpectedExit(_) if sigint.interrupted() => Outcome::Killed,
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::find::Version;
    use crate::profile::Firmware;
    use crate::testutil::{TempDir, script_lock};

    /// A fake QEMU that runs `body` as a shell script, an image and a BIOS profile for it.
    struct Fake {
        dir: TempDir,
        qemu: Qemu,
        image: PathBuf,
        profile: Profile,
    }

    impl Fake {
        fn new(tag: &str, body: &str) -> Fake {
            let dir = TempDir::new(tag);
            let binary = dir.path().join("fake-qemu");
            dir.script(&binary, body);
            let image = dir.file("bios.img", b"image");
            Fake {
                qemu: Qemu::with_binary(binary, Version::new(10, 0, 2)),
                dir,
                image,
                profile: Profile::new("bios-smp1", Firmware::Bios, 1),
            }
        }

        fn run(&self, opts: &RunOptions) -> RunResult {
            self.qemu
                .run(&self.profile, &self.image, opts)
                .expect("run")
        }
    }

    #[test]
    fn decodes_lines() {
        assert_eq!(decode_line(b"ok 1 a\r\n"), "ok 1 a");
        assert_eq!(decode_line(b"plain\n"), "plain");
        assert_eq!(decode_line(b"partial"), "partial");
        assert_eq!(decode_line(b"a\rb\r\r\n"), "a\rb");
        assert_eq!(decode_line(b"bad \xff byte\n"), "bad \u{fffd} byte");
    }

    #[test]
    fn echo_rendering() {
        assert_eq!(Echo::None.render("x"), None);
        assert_eq!(Echo::Raw.render("x").as_deref(), Some("x\n"));
        assert_eq!(
            Echo::Prefixed("[bios] ".into()).render("x").as_deref(),
            Some("[bios] x\n")
        );
    }

    #[test]
    fn successful_run_collects_serial_and_stderr() {
        let _lock = script_lock();
        let fake = Fake::new(
            "run-ok",
            r"printf 'KTAP version 1\r\n1..1\r\nok 1 boots\r\n'
printf 'bad \377 byte\n'
echo 'qemu: warning: something' >&2
printf '1 passed, 0 failed\r\nno newline at the end'
exit 33",
        );
        let log = fake.dir.path().join("logs/serial.log");
        let result = fake.run(&RunOptions {
            timeout: Some(Duration::from_secs(20)),
            serial_log: Some(log.clone()),
            ..RunOptions::default()
        });
        assert_eq!(result.outcome, Outcome::Success);
        assert_eq!(
            result.serial,
            [
                "KTAP version 1",
                "1..1",
                "ok 1 boots",
                "bad \u{fffd} byte",
                "1 passed, 0 failed",
                "no newline at the end"
            ]
        );
        assert_eq!(result.stderr, "qemu: warning: something\n");
        assert_eq!(
            result.last_lines(2),
            ["1 passed, 0 failed", "no newline at the end"]
        );
        assert_eq!(result.last_lines(100).len(), 6);
        assert!(result.ktap().verdict().is_pass());
        let logged = fs::read_to_string(&log).expect("serial log");
        assert_eq!(logged, result.serial.join("\n") + "\n");
    }

    #[test]
    fn typed_text_waits_for_its_cue() {
        let _lock = script_lock();
        let fake = Fake::new(
            "run-typed",
            r"echo 'shell ready'
read first; echo got $first
read second; echo got $second
exit 33",
        );
        let typed = |cue: &str, text: &str| Typed {
            cue: cue.into(),
            text: text.as_bytes().to_vec(),
        };
        let result = fake.run(&RunOptions {
            timeout: Some(Duration::from_secs(20)),
            input: vec![typed("ready", "one\n"), typed("got one", "two\n")],
            ..RunOptions::default()
        });
        assert_eq!(result.outcome, Outcome::Success);
        assert_eq!(result.serial, ["shell ready", "got one", "got two"]);
    }

    #[test]
    fn failure_and_unexpected_exits() {
        let _lock = script_lock();
        let fake = Fake::new("run-fail", "echo 'not ok 1 x'; exit 35");
        let result = fake.run(&RunOptions::default());
        assert_eq!(result.outcome, Outcome::Failure);
        assert_eq!(result.serial, ["not ok 1 x"]);

        let fake = Fake::new("run-zero", "exit 0");
        let result = fake.run(&RunOptions::default());
        assert_eq!(result.outcome, Outcome::UnexpectedExit(0));
        assert!(result.serial.is_empty());
    }

    #[test]
    fn silence_timeout_kills_a_quiet_qemu() {
        let _lock = script_lock();
        let fake = Fake::new("run-quiet", "echo booting; exec sleep 600");
        let started = Instant::now();
        let result = fake.run(&RunOptions {
            timeout: Some(Duration::from_secs(60)),
            silence_timeout: Some(Duration::from_millis(300)),
            ..RunOptions::default()
        });
        assert_eq!(result.outcome, Outcome::TimedOut);
        assert_eq!(result.serial, ["booting"]);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn timeout_kills_a_hanging_qemu_quickly() {
        let _lock = script_lock();
        let fake = Fake::new("run-hang", "echo booting; echo partial >&2; exec sleep 600");
        let started = Instant::now();
        let result = fake.run(&RunOptions {
            timeout: Some(Duration::from_millis(300)),
            ..RunOptions::default()
        });
        assert_eq!(result.outcome, Outcome::TimedOut);
        assert_eq!(result.serial, ["booting"]);
        assert_eq!(result.stderr, "partial\n");
        assert!(result.elapsed >= Duration::from_millis(300));
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn qemu_args_reach_the_process() {
        let _lock = script_lock();
        let fake = Fake::new(
            "run-args",
            r#"for arg in "$@"; do echo "$arg"; done; exit 33"#,
        );
        let result = fake.run(&RunOptions::default());
        let expected = fake
            .qemu
            .command(&fake.profile, &fake.image, SerialIo::Captured)
            .expect("command")
            .args();
        assert_eq!(result.serial, expected);
    }

    #[test]
    fn spawn_failure_is_an_error() {
        // Spawning forks even when the program is missing: see `script_lock`.
        let _lock = script_lock();
        let dir = TempDir::new("run-nobin");
        let image = dir.file("bios.img", b"image");
        let qemu = Qemu::with_binary(dir.path().join("missing"), Version::new(10, 0, 2));
        let profile = Profile::new("bios", Firmware::Bios, 1);
        let err = qemu
            .run(&profile, &image, &RunOptions::default())
            .expect_err("cannot spawn");
        assert!(matches!(err, RunError::Spawn { .. }), "{err}");
        assert!(err.to_string().starts_with("could not start "));
    }

    #[test]
    fn ctrl_c_kills_a_captured_run() {
        let _lock = script_lock();
        // SAFETY: queries the disposition, with valid pointers.
        let ignored = unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGINT, std::ptr::null(), &mut current);
            current.sa_sigaction == libc::SIG_IGN
        };
        if ignored {
            // Started with SIGINT ignored (a background job): Ctrl-C cannot reach a run.
            return;
        }
        let fake = Fake::new("run-sigint", "echo ready; exec sleep 600");
        let runner = thread::spawn(move || {
            let result = fake.run(&RunOptions {
                timeout: Some(Duration::from_secs(30)),
                ..RunOptions::default()
            });
            (result, fake)
        });
        // Deliver SIGINT only while the handler is installed, as the terminal would.
        let started = Instant::now();
        while !crate::sigint::installed() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "run never started"
            );
            thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: the run's handler is installed, so SIGINT only sets its flag.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGINT);
        }
        let (result, _fake) = runner.join().expect("runner");
        assert_eq!(result.outcome, Outcome::Killed);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn interactive_run_reports_the_outcome() {
        let _lock = script_lock();
        let fake = Fake::new("run-interactive", "exit 35");
        let log = fake.dir.path().join("logs/interactive.log");
        let outcome = fake
            .qemu
            .run_interactive(&fake.profile, &fake.image, &log)
            .expect("run");
        assert_eq!(outcome, Outcome::Failure);
        assert!(log.parent().is_some_and(Path::is_dir));
    }
}
