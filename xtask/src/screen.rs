//! The screen tests: the framebuffer console and the PS/2 keyboard as a user at a real machine
//! sees them.
//!
//! Each boots with QEMU's monitor on a Unix socket, waits until a prompt shows on the screen,
//! types a line through the monitor's `sendkey`, and waits until the answer shows; then types
//! the keys that end the program. The screen is read with `screendump` (a PPM): the text the
//! test expects is drawn on the host with the kernel's own font and colours (kernel/libs/vt)
//! and looked for at every cell position of the kernel's grid. The serial line must show the
//! same answer (the console's output goes to both).
//!
//! - [`run`]: `/bin/echoline` (user/echoline) as init in a small BIOS image; the line has
//!   shift, a typo erased with Backspace and a comma; init must exit with status 0.
//! - [`root_shell`]: the root file system (`qemu --root`, UEFI): keys reach busybox's shell,
//!   which computes `$((6*7))`, and `poweroff -f` ends the run.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qemu::{Echo, Firmware, Profile, Qemu, RunOptions};
use vt::font::{BORDER, CELL_HEIGHT, CELL_WIDTH, Rgb};

use crate::artifacts::{self, Tests};
use crate::ramdisk::Contents;
use crate::rootfs::{self, Root};
use crate::user::Program;

/// Between two looks at the screen.
const LOOK_INTERVAL: Duration = Duration::from_millis(500);
/// How far a pixel may be from the expected colour (a framebuffer of 16 bits a pixel rounds).
const COLOUR_TOLERANCE: u8 = 24;

/// What one screen test types and waits for.
struct Script {
    /// The whole run: boot, typing, exit.
    run_timeout: Duration,
    /// From QEMU's start until the prompt shows (the boot, on a busy host).
    prompt_timeout: Duration,
    prompt: String,
    /// QEMU's key names, ending with Enter.
    keys: &'static [&'static str],
    /// Shows once the line was typed and run; the typed line itself does not show it.
    answer: &'static str,
    /// Typed once the answer showed, to end the program.
    exit_keys: &'static [&'static str],
}

/// From the last key until the answer shows.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// echoline: `Hellp`, Backspace, `o, world`, Enter; then `exit`.
fn echoline_script() -> Script {
    Script {
        run_timeout: Duration::from_secs(150),
        prompt_timeout: Duration::from_secs(90),
        prompt: "type> ".into(),
        keys: &[
            "shift-h",
            "e",
            "l",
            "l",
            "p",
            "backspace",
            "o",
            "comma",
            "spc",
            "w",
            "o",
            "r",
            "l",
            "d",
            "ret",
        ],
        answer: "echo: Hello, world",
        exit_keys: &["e", "x", "i", "t", "ret"],
    }
}

/// The root's shell: `echo $((6*7)) on screen`, then `poweroff -f`. The root's ramdisk is
/// large: the firmware takes its time.
fn root_shell_script() -> Script {
    Script {
        run_timeout: Duration::from_secs(420),
        prompt_timeout: Duration::from_secs(300),
        prompt: format!("root@{}:~# ", rootfs::HOSTNAME),
        keys: &[
            "e", "c", "h", "o", "spc", "shift-4", "shift-9", "shift-9", "6", "shift-8", "7",
            "shift-0", "shift-0", "spc", "o", "n", "spc", "s", "c", "r", "e", "e", "n", "ret",
        ],
        answer: "42 on screen",
        exit_keys: &[
            "p", "o", "w", "e", "r", "o", "f", "f", "spc", "minus", "f", "ret",
        ],
    }
}

/// An RGB picture, as a PPM holds it.
struct Picture {
    width: usize,
    height: usize,
    pixels: Vec<Rgb>,
}

impl Picture {
    /// Parses a binary PPM (`P6`, 8 bits a channel), as QEMU's `screendump` writes.
    fn from_ppm(bytes: &[u8]) -> Result<Self, String> {
        let mut fields = Vec::new();
        let mut at = 0;
        while fields.len() < 4 {
            while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
                at += 1;
            }
            let start = at;
            while bytes.get(at).is_some_and(|b| !b.is_ascii_whitespace()) {
                at += 1;
            }
            if start == at {
                return Err("the PPM header is cut short".into());
            }
            fields.push(String::from_utf8_lossy(&bytes[start..at]).into_owned());
        }
        let number = |text: &str| {
            text.parse::<usize>()
                .map_err(|_| format!("bad PPM header field {text:?}"))
        };
        if fields[0] != "P6" || number(&fields[3])? != 255 {
            return Err(format!("not an 8-bit binary PPM: {fields:?}"));
        }
        let (width, height) = (number(&fields[1])?, number(&fields[2])?);
        let data = bytes.get(at + 1..).unwrap_or_default();
        if data.len() < width * height * 3 {
            return Err("the PPM's pixels are cut short".into());
        }
        let pixels = data.as_chunks::<3>().0[..width * height].to_vec();
        Ok(Self {
            width,
            height,
            pixels,
        })
    }

    /// `text` as the kernel draws it in the default colours: one line of cells.
    fn of_text(text: &str) -> Self {
        let width = text.chars().count() * CELL_WIDTH;
        let mut pixels = vec![[0; 3]; width * CELL_HEIGHT];
        for (index, character) in text.chars().enumerate() {
            vt::font::draw_cell(
                character,
                &vt::Attributes::DEFAULT,
                false,
                |x, y, colour| {
                    pixels[y * width + index * CELL_WIDTH + x] = colour;
                },
            );
        }
        Self {
            width,
            height: CELL_HEIGHT,
            pixels,
        }
    }

    /// Whether `part` shows at (`left`, `top`).
    fn shows_at(&self, part: &Picture, left: usize, top: usize) -> bool {
        if left + part.width > self.width || top + part.height > self.height {
            return false;
        }
        (0..part.height).all(|y| {
            let here = &self.pixels[(top + y) * self.width + left..][..part.width];
            let there = &part.pixels[y * part.width..][..part.width];
            here.iter().zip(there).all(|(a, b)| {
                a.iter()
                    .zip(b)
                    .all(|(a, b)| a.abs_diff(*b) <= COLOUR_TOLERANCE)
            })
        })
    }

    /// The grid cell (row, column) where `text` starts on this screen, if it shows.
    fn find_text(&self, text: &str) -> Option<(usize, usize)> {
        let part = Self::of_text(text);
        let rows = self.height.saturating_sub(2 * BORDER) / CELL_HEIGHT;
        let columns = self.width.saturating_sub(2 * BORDER) / CELL_WIDTH;
        (0..rows)
            .flat_map(|row| (0..columns).map(move |column| (row, column)))
            .find(|&(row, column)| {
                self.shows_at(
                    &part,
                    BORDER + column * CELL_WIDTH,
                    BORDER + row * CELL_HEIGHT,
                )
            })
    }
}

/// QEMU's human monitor on a Unix socket.
struct Monitor {
    stream: UnixStream,
}

impl Monitor {
    /// Connects once QEMU made the socket, and reads its greeting.
    fn connect(path: &Path, deadline: Instant) -> Result<Self, String> {
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("no monitor at {}: {e}", path.display()));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .map_err(|e| format!("monitor: {e}"))?;
        let mut monitor = Self { stream };
        monitor.read_to_prompt()?;
        Ok(monitor)
    }

    /// Reads until the monitor's `(qemu) ` prompt.
    fn read_to_prompt(&mut self) -> Result<String, String> {
        let mut text = Vec::new();
        let mut buf = [0; 1024];
        while !text.ends_with(b"(qemu) ") {
            let count = self
                .stream
                .read(&mut buf)
                .map_err(|e| format!("monitor: {e}"))?;
            if count == 0 {
                return Err("the monitor closed".into());
            }
            text.extend_from_slice(&buf[..count]);
        }
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    /// Runs one command and waits for it to finish.
    fn command(&mut self, command: &str) -> Result<String, String> {
        self.stream
            .write_all(format!("{command}\n").as_bytes())
            .map_err(|e| format!("monitor: {e}"))?;
        self.read_to_prompt()
    }

    fn type_keys(&mut self, keys: &[&str]) -> Result<(), String> {
        for key in keys {
            self.command(&format!("sendkey {key}"))?;
            // Each key is held 100 ms; let it go before the next.
            std::thread::sleep(Duration::from_millis(150));
        }
        Ok(())
    }

    /// The screen now.
    fn screen(&mut self, file: &Path) -> Result<Picture, String> {
        let _ = std::fs::remove_file(file);
        self.command(&format!("screendump {}", file.display()))?;
        let bytes =
            std::fs::read(file).map_err(|e| format!("screendump {}: {e}", file.display()))?;
        Picture::from_ppm(&bytes)
    }

    /// Looks at the screen until `text` shows, or `timeout` passes.
    fn wait_for_text(
        &mut self,
        text: &str,
        file: &Path,
        timeout: Duration,
    ) -> Result<(usize, usize), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen(file)?;
            if let Some(cell) = screen.find_text(text) {
                return Ok(cell);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{text:?} never showed on the {}x{} screen within {} s (last screen: {})",
                    screen.width,
                    screen.height,
                    timeout.as_secs(),
                    file.display()
                ));
            }
            std::thread::sleep(LOOK_INTERVAL);
        }
    }
}

/// What the typing side saw: where the prompt and the answer showed.
fn drive(socket: &Path, screen_file: &Path, script: &Script) -> Result<String, String> {
    let started = Instant::now();
    let mut monitor = Monitor::connect(socket, started + Duration::from_secs(30))?;
    let outcome = (|| {
        let prompt = monitor.wait_for_text(&script.prompt, screen_file, script.prompt_timeout)?;
        monitor.type_keys(script.keys)?;
        let answer = monitor.wait_for_text(script.answer, screen_file, ANSWER_TIMEOUT)?;
        monitor.type_keys(script.exit_keys)?;
        Ok(format!(
            "prompt at row {}, answer at row {}, {:.1} s",
            prompt.0,
            answer.0,
            started.elapsed().as_secs_f64()
        ))
    })();
    if outcome.is_err() {
        // Do not wait for the run's timeout.
        let _ = monitor.command("quit");
    }
    outcome
}

/// Boots `image` with the monitor on a socket, types `script` and checks the screen and the
/// serial line; Ok((summary, the run)) or Err(why it failed).
fn run_script(
    qemu: &Qemu,
    mut profile: Profile,
    image: &Path,
    script: Script,
    verbose: bool,
) -> Result<(String, qemu::RunResult), String> {
    let name = profile.name.clone();
    let dir = artifacts::target_dir().join("screen");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let socket = dir.join(format!("{name}.sock"));
    let _ = std::fs::remove_file(&socket);
    let screen_file = dir.join(format!("{name}.ppm"));
    let log: PathBuf = artifacts::target_dir()
        .join("test-logs")
        .join(format!("{name}.log"));
    profile.extra_args = vec![
        "-monitor".into(),
        format!("unix:{},server=on,wait=off", socket.display()),
    ];
    let options = RunOptions {
        timeout: Some(script.run_timeout),
        silence_timeout: None,
        echo: if verbose {
            Echo::Prefixed(format!("[{name}] "))
        } else {
            Echo::None
        },
        serial_log: Some(log.clone()),
        input: Vec::new(),
    };
    let answer = script.answer;
    let driver = {
        let (socket, screen_file) = (socket.clone(), screen_file.clone());
        std::thread::spawn(move || drive(&socket, &screen_file, &script))
    };
    let result = qemu
        .run(&profile, image, &options)
        .map_err(|e| e.to_string())?;
    let typed = driver
        .join()
        .map_err(|_| "the typing thread panicked".to_owned())?;
    let typed = typed.map_err(|e| format!("{e}; serial log in {}", log.display()))?;
    if !result.serial.iter().any(|line| line.contains(answer)) {
        return Err(format!(
            "the screen showed {answer:?} but the serial line did not (log in {})",
            log.display()
        ));
    }
    Ok((typed, result))
}

/// The echoline screen test (see the module documentation); Ok(summary) or Err(why it failed).
pub fn run(qemu: &Qemu, programs: &[Program], verbose: bool) -> Result<String, String> {
    let kernel = artifacts::build_kernel(false, Tests::With)?;
    // echoline alone: a small ramdisk loads fast (the firmware reads it sector by sector).
    let contents = Contents {
        programs: programs
            .iter()
            .filter(|program| program.name == "echoline")
            .cloned()
            .collect(),
        files: Vec::new(),
        debian_root: None,
    };
    let images = artifacts::make_images(&kernel, "init=/bin/echoline exit", "screen", &contents)?;
    let profile = Profile::new("screen", Firmware::Bios, 2);
    let (typed, result) = run_script(qemu, profile, &images.bios, echoline_script(), verbose)?;
    match crate::init_status(&result.serial, "/bin/echoline") {
        Some(0) => Ok(typed),
        status => Err(format!(
            "echoline's exit status: {status:?} (QEMU: {})",
            result.outcome
        )),
    }
}

/// The root's shell on the screen (see the module documentation); Ok(summary) or Err(why).
pub fn root_shell(
    qemu: &Qemu,
    root: &Root,
    programs: &[Program],
    verbose: bool,
) -> Result<String, String> {
    let cmdline = format!("init={}", rootfs::INIT);
    let images = crate::acceptance::root_images(root, programs, &cmdline, "root-screen")?;
    let mut profile = Profile::new("root-screen", Firmware::Uefi, 2);
    profile.memory_mib = rootfs::DEFAULT_MEMORY_MIB;
    let (typed, result) = run_script(qemu, profile, &images.uefi, root_shell_script(), verbose)?;
    match result.outcome {
        qemu::Outcome::Success => Ok(typed),
        other => Err(format!(
            "the shell's poweroff -f did not end the run: {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_text_drawn_on_a_screen() {
        let columns = 30;
        let (width, height) = (
            2 * BORDER + columns * CELL_WIDTH,
            2 * BORDER + 4 * CELL_HEIGHT,
        );
        let mut screen = Picture {
            width,
            height,
            pixels: vec![[0; 3]; width * height],
        };
        let text = Picture::of_text("type> hi");
        let (left, top) = (BORDER + 3 * CELL_WIDTH, BORDER + 2 * CELL_HEIGHT);
        for y in 0..text.height {
            for x in 0..text.width {
                screen.pixels[(top + y) * width + left + x] = text.pixels[y * text.width + x];
            }
        }
        assert_eq!(screen.find_text("type> "), Some((2, 3)));
        assert_eq!(screen.find_text("hi"), Some((2, 9)));
        assert_eq!(screen.find_text("type> ho"), None);
        let mut ppm = format!("P6\n{width} {height}\n255\n").into_bytes();
        ppm.extend(screen.pixels.iter().flatten());
        let parsed = Picture::from_ppm(&ppm).unwrap();
        assert_eq!(parsed.find_text("type> hi"), Some((2, 3)));
        assert!(Picture::from_ppm(b"P6\n2 2\n255\n").is_err());
    }
}
