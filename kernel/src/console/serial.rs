//! COM1, found by probing: a port that fails the UART's loopback test is treated as absent.

use uart_16550::spec::registers::IER;
use uart_16550::{Config, Uart16550, backend::PioBackend};

const COM1: u16 = 0x3f8;

pub struct Serial {
    uart: Uart16550<PioBackend>,
}

impl Serial {
    /// COM1 if a 16550 answers there and passes its loopback test.
    pub fn probe_com1() -> Option<Self> {
        // SAFETY: 0x3f8..0x400 are COM1's registers on every PC; nothing else in the kernel
        // touches them, and the console owns the one `Serial`.
        let mut uart = unsafe { Uart16550::new_port(COM1) }.ok()?;
        uart.init(Config::default()).ok()?;
        uart.test_loopback().ok()?;
        Some(Self { uart })
    }

    /// Sends text, turning `\n` into `\r\n` for terminals.
    pub fn write_str(&mut self, s: &str) {
        for line in s.split_inclusive('\n') {
            match line.strip_suffix('\n') {
                Some(text) => {
                    self.uart.send_bytes_exact(text.as_bytes());
                    self.uart.send_bytes_exact(b"\r\n");
                }
                None => self.uart.send_bytes_exact(line.as_bytes()),
            }
        }
    }

    /// Sends bytes exactly as they are (terminal output: the line discipline already turned
    /// newlines into what the terminal wants).
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        self.uart.send_bytes_exact(bytes);
    }

    pub fn try_read(&mut self) -> Option<u8> {
        self.uart.try_receive_byte().ok()
    }

    /// Raises the UART's interrupt line whenever received bytes wait (reading them lowers it).
    pub fn enable_receive_interrupt(&mut self) {
        self.uart.enable_interrupts(IER::DATA_READY);
    }
}
