//! Linux's terminal settings as the x86_64 `TCGETS`/`TCSETS` ioctls move them (`struct termios`
//! of the kernel, without the speed fields of glibc's larger structure), with Linux's bit values,
//! and the window size of `TIOCGWINSZ`/`TIOCSWINSZ`.
//!
//! Both structures are plain data without padding, so the kernel may copy them to and from user
//! memory byte for byte. Flags this crate does not act on (parity, baud rate, `TOSTOP`, ...) are
//! still stored and returned unchanged: `TOSTOP` is the kernel's to check on background writes.

/// Number of control characters in [`Termios::c_cc`].
pub const NCCS: usize = 19;

// Input modes (`c_iflag`).
/// Strip the eighth bit of every input byte.
pub const ISTRIP: u32 = 0o40;
/// Map newline to carriage return on input.
pub const INLCR: u32 = 0o100;
/// Ignore carriage return on input.
pub const IGNCR: u32 = 0o200;
/// Map carriage return to newline on input (unless `IGNCR`).
pub const ICRNL: u32 = 0o400;
/// `VSTOP` stops output and `VSTART` restarts it.
pub const IXON: u32 = 0o2000;
/// Input is UTF-8: erasing removes a whole character and columns count characters.
pub const IUTF8: u32 = 0o40000;

// Output modes (`c_oflag`).
/// Process output (the other output flags apply only with it).
pub const OPOST: u32 = 0o1;
/// Map newline to carriage return and newline on output.
pub const ONLCR: u32 = 0o4;
/// Map carriage return to newline on output.
pub const OCRNL: u32 = 0o10;

// Control modes (`c_cflag`).
/// The 38400 baud rate (the `CBAUD` field), the rate the kernel's 16550 driver programs.
pub const B38400: u32 = 0o17;
/// Eight data bits (the `CSIZE` field).
pub const CS8: u32 = 0o60;
/// The receiver is enabled.
pub const CREAD: u32 = 0o200;
/// Hang up when the last process closes the device.
pub const HUPCL: u32 = 0o2000;

// Local modes (`c_lflag`).
/// `VINTR`, `VQUIT` and `VSUSP` generate signals.
pub const ISIG: u32 = 0o1;
/// Canonical mode: input is edited and read a line at a time.
pub const ICANON: u32 = 0o2;
/// Echo input.
pub const ECHO: u32 = 0o10;
/// `VERASE` (and `VWERASE`) erase visually, with backspace-space-backspace.
pub const ECHOE: u32 = 0o20;
/// `VKILL` erases the line (with `ECHOKE`), or echoes a newline after the kill character.
pub const ECHOK: u32 = 0o40;
/// Echo newline in canonical mode even without `ECHO`.
pub const ECHONL: u32 = 0o100;
/// Do not flush input when a signal character arrives.
pub const NOFLSH: u32 = 0o200;
/// Background writes raise `SIGTTOU` (checked by the kernel, not here).
pub const TOSTOP: u32 = 0o400;
/// Echo control characters as `^X` (`DEL` as `^?`).
pub const ECHOCTL: u32 = 0o1000;
/// `VKILL` erases each character of the line visually.
pub const ECHOKE: u32 = 0o4000;
/// Extended input processing: `VWERASE`, `VLNEXT`, `VREPRINT`, `VEOL2`.
pub const IEXTEN: u32 = 0o100000;

// Indexes into `c_cc`.
/// Interrupt character: `SIGINT`.
pub const VINTR: usize = 0;
/// Quit character: `SIGQUIT`.
pub const VQUIT: usize = 1;
/// Erase the last character.
pub const VERASE: usize = 2;
/// Erase the line.
pub const VKILL: usize = 3;
/// End of file: pass the line on without a terminator (at the start of a line: end of input).
pub const VEOF: usize = 4;
/// Non-canonical read timer, in tenths of a second.
pub const VTIME: usize = 5;
/// Non-canonical read minimum byte count.
pub const VMIN: usize = 6;
/// Restart output (with `IXON`).
pub const VSTART: usize = 8;
/// Stop output (with `IXON`).
pub const VSTOP: usize = 9;
/// Suspend character: `SIGTSTP`.
pub const VSUSP: usize = 10;
/// Additional line terminator.
pub const VEOL: usize = 11;
/// Echo the line being edited again.
pub const VREPRINT: usize = 12;
/// Discard output (stored only: Linux does not act on it either).
pub const VDISCARD: usize = 13;
/// Erase the last word.
pub const VWERASE: usize = 14;
/// Take the next character literally.
pub const VLNEXT: usize = 15;
/// Second additional line terminator (with `IEXTEN`).
pub const VEOL2: usize = 16;

/// The value of a control character that is disabled (`_POSIX_VDISABLE`).
pub const DISABLED: u8 = 0;

/// The ASCII control character typed as Ctrl and `letter`.
const fn ctrl(letter: u8) -> u8 {
    letter & 0x1f
}

/// Linux's `struct termios` of `TCGETS`/`TCSETS` on x86_64: 36 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Termios {
    /// Input modes.
    pub c_iflag: u32,
    /// Output modes.
    pub c_oflag: u32,
    /// Control modes.
    pub c_cflag: u32,
    /// Local modes.
    pub c_lflag: u32,
    /// Line discipline number (0: the terminal discipline).
    pub c_line: u8,
    /// Control characters, indexed by the `V*` constants; [`DISABLED`] turns one off.
    pub c_cc: [u8; NCCS],
}

impl Termios {
    /// The settings of a freshly opened Linux tty (`stty -a`: `icrnl ixon opost onlcr isig icanon
    /// echo echoe echok echoctl echoke iexten`, 38400 baud, `cs8 cread hupcl`, `intr = ^C; quit =
    /// ^\; erase = ^?; kill = ^U; eof = ^D; start = ^Q; stop = ^S; susp = ^Z; rprnt = ^R; werase =
    /// ^W; lnext = ^V; discard = ^O; min = 1; time = 0`).
    pub const fn linux_default() -> Self {
        let mut c_cc = [DISABLED; NCCS];
        c_cc[VINTR] = ctrl(b'C');
        c_cc[VQUIT] = ctrl(b'\\');
        c_cc[VERASE] = 0x7f;
        c_cc[VKILL] = ctrl(b'U');
        c_cc[VEOF] = ctrl(b'D');
        c_cc[VTIME] = 0;
        c_cc[VMIN] = 1;
        c_cc[VSTART] = ctrl(b'Q');
        c_cc[VSTOP] = ctrl(b'S');
        c_cc[VSUSP] = ctrl(b'Z');
        c_cc[VREPRINT] = ctrl(b'R');
        c_cc[VDISCARD] = ctrl(b'O');
        c_cc[VWERASE] = ctrl(b'W');
        c_cc[VLNEXT] = ctrl(b'V');
        Self {
            c_iflag: ICRNL | IXON,
            c_oflag: OPOST | ONLCR,
            c_cflag: B38400 | CS8 | CREAD | HUPCL,
            c_lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            c_line: 0,
            c_cc,
        }
    }

    /// Whether input is edited and read a line at a time (`ICANON`).
    pub const fn is_canonical(&self) -> bool {
        self.c_lflag & ICANON != 0
    }

    /// The structure's size as `TCGETS` and `TCSETS` copy it.
    pub const SIZE: usize = 36;

    /// The bytes `TCGETS` copies to user memory (x86_64 is little-endian).
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut bytes = [0; Self::SIZE];
        let flags = [self.c_iflag, self.c_oflag, self.c_cflag, self.c_lflag];
        for (slot, flag) in bytes.as_chunks_mut::<4>().0.iter_mut().zip(flags) {
            *slot = flag.to_le_bytes();
        }
        bytes[16] = self.c_line;
        bytes[17..].copy_from_slice(&self.c_cc);
        bytes
    }

    /// The settings in the bytes `TCSETS` copied from user memory.
    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Self {
        let words = bytes.as_chunks::<4>().0;
        let flag = |index: usize| u32::from_le_bytes(words[index]);
        let mut c_cc = [0; NCCS];
        c_cc.copy_from_slice(&bytes[17..]);
        Self {
            c_iflag: flag(0),
            c_oflag: flag(1),
            c_cflag: flag(2),
            c_lflag: flag(3),
            c_line: bytes[16],
            c_cc,
        }
    }
}

impl Default for Termios {
    fn default() -> Self {
        Self::linux_default()
    }
}

/// Linux's `struct winsize` of `TIOCGWINSZ`/`TIOCSWINSZ`: 8 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Winsize {
    /// Rows of characters.
    pub ws_row: u16,
    /// Columns of characters.
    pub ws_col: u16,
    /// Width in pixels (unused by the kernel).
    pub ws_xpixel: u16,
    /// Height in pixels (unused by the kernel).
    pub ws_ypixel: u16,
}

impl Winsize {
    /// The structure's size as `TIOCGWINSZ` and `TIOCSWINSZ` copy it.
    pub const SIZE: usize = 8;

    /// The bytes `TIOCGWINSZ` copies to user memory (little-endian).
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut bytes = [0; Self::SIZE];
        let fields = [self.ws_row, self.ws_col, self.ws_xpixel, self.ws_ypixel];
        for (slot, field) in bytes.as_chunks_mut::<2>().0.iter_mut().zip(fields) {
            *slot = field.to_le_bytes();
        }
        bytes
    }

    /// The size in the bytes `TIOCSWINSZ` copied from user memory.
    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Self {
        let field = |index: usize| u16::from_le_bytes([bytes[2 * index], bytes[2 * index + 1]]);
        Self {
            ws_row: field(0),
            ws_col: field(1),
            ws_xpixel: field(2),
            ws_ypixel: field(3),
        }
    }
}

impl Default for Winsize {
    /// The classic terminal: 24 rows of 80 columns.
    fn default() -> Self {
        Self {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }
    }
}
