//! The PS/2 keyboard behind an i8042 controller: the console's keyboard on a real machine
//! (and, through the firmware's USB legacy emulation, often a USB keyboard's too).
//!
//! Found through ACPI: the FADT's `IAPC_BOOT_ARCH` flag says a controller is there; where the
//! flag is clear or the FADT too old to have it (QEMU's q35 among them), the controller is
//! probed: a status port that reads 0xff is no controller, and one that fails its self-test is
//! not used. [`init`] sets it up with scan code translation on (set 1, what kernel/libs/kbd
//! decodes), the auxiliary (mouse) port off, and the keyboard's interrupt, ISA IRQ 1, routed
//! through the I/O APIC to `arch::ioapic::KEYBOARD_VECTOR` on the bootstrap CPU.
//!
//! [`interrupt`] reads the scan codes and hands what they send to the console's input
//! (`console::keyboard_input`), which the terminal's input worker feeds to the console's line
//! discipline, exactly as it does the serial line's bytes. The decoder's state is under
//! [`KEYBOARD`]'s lock, which only this interrupt takes.

use x86_64::instructions::port::Port;

use crate::sync::IrqSpinLock;

const DATA_PORT: u16 = 0x60;
const STATUS_PORT: u16 = 0x64;
const COMMAND_PORT: u16 = 0x64;

// Status register bits.
const OUTPUT_FULL: u8 = 1 << 0;
const INPUT_FULL: u8 = 1 << 1;
const FROM_AUXILIARY: u8 = 1 << 5;

// Controller commands.
const READ_CONFIGURATION: u8 = 0x20;
const WRITE_CONFIGURATION: u8 = 0x60;
const DISABLE_AUXILIARY: u8 = 0xa7;
const SELF_TEST: u8 = 0xaa;
const SELF_TEST_PASSED: u8 = 0x55;
const DISABLE_KEYBOARD: u8 = 0xad;
const ENABLE_KEYBOARD: u8 = 0xae;

// Configuration byte bits.
const KEYBOARD_INTERRUPT: u8 = 1 << 0;
const AUXILIARY_INTERRUPT: u8 = 1 << 1;
const KEYBOARD_CLOCK_OFF: u8 = 1 << 4;
const TRANSLATION: u8 = 1 << 6;

/// The keyboard's command to start sending scan codes, and its acknowledgement.
const ENABLE_SCANNING: u8 = 0xf4;
const ACKNOWLEDGE: u8 = 0xfa;

/// How long to wait for the controller to take or give a byte.
const TIMEOUT_NS: u64 = 50_000_000;
/// The most stale bytes read out of the controller before it is set up.
const FLUSH_MAX: usize = 32;

static KEYBOARD: IrqSpinLock<kbd::Keyboard> = IrqSpinLock::new(kbd::Keyboard::new());

fn read_port(port: u16) -> u8 {
    // SAFETY: 0x60 and 0x64 are the i8042's data and status ports on every PC; reading them
    // has no effect beyond the controller's (this module is their one user).
    unsafe { Port::<u8>::new(port).read() }
}

fn write_port(port: u16, value: u8) {
    // SAFETY: as in `read_port`, for the data and command ports.
    unsafe { Port::<u8>::new(port).write(value) }
}

/// Waits until `ready(status)` or the timeout; false on timeout.
fn wait_status(ready: impl Fn(u8) -> bool) -> bool {
    let deadline = crate::time::now_ns() + TIMEOUT_NS;
    while !ready(read_port(STATUS_PORT)) {
        if crate::time::now_ns() > deadline {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

fn send(port: u16, value: u8) -> Result<(), &'static str> {
    if !wait_status(|status| status & INPUT_FULL == 0) {
        return Err("the controller takes no input");
    }
    write_port(port, value);
    Ok(())
}

fn receive() -> Result<u8, &'static str> {
    if !wait_status(|status| status & OUTPUT_FULL != 0) {
        return Err("the controller did not answer");
    }
    Ok(read_port(DATA_PORT))
}

fn write_configuration(configuration: u8) -> Result<(), &'static str> {
    send(COMMAND_PORT, WRITE_CONFIGURATION)?;
    send(DATA_PORT, configuration)
}

/// Sets the controller up (see the module documentation) with its interrupt off.
fn set_up_controller() -> Result<u8, &'static str> {
    if read_port(STATUS_PORT) == 0xff {
        return Err("no controller answers at port 0x64");
    }
    send(COMMAND_PORT, DISABLE_KEYBOARD)?;
    send(COMMAND_PORT, DISABLE_AUXILIARY)?;
    for _ in 0..FLUSH_MAX {
        if read_port(STATUS_PORT) & OUTPUT_FULL == 0 {
            break;
        }
        read_port(DATA_PORT);
    }
    send(COMMAND_PORT, READ_CONFIGURATION)?;
    let configuration = (receive()?
        & !(KEYBOARD_INTERRUPT | AUXILIARY_INTERRUPT | KEYBOARD_CLOCK_OFF))
        | TRANSLATION;
    write_configuration(configuration)?;
    send(COMMAND_PORT, SELF_TEST)?;
    if receive()? != SELF_TEST_PASSED {
        return Err("the controller failed its self-test");
    }
    // The self-test resets the configuration on some controllers.
    write_configuration(configuration)?;
    send(COMMAND_PORT, ENABLE_KEYBOARD)?;
    // Scanning is on after a keyboard's reset already; a keyboard that does not answer may
    // still be plugged in later.
    send(DATA_PORT, ENABLE_SCANNING)?;
    if receive() != Ok(ACKNOWLEDGE) {
        log::info!("keyboard: no keyboard answered (none plugged in?)");
    }
    Ok(configuration)
}

/// Finds and sets up the i8042 and routes its keyboard interrupt; says why not in the log.
/// `rsdp` locates the ACPI tables.
pub fn init(rsdp: Option<u64>) {
    let flag = rsdp.and_then(crate::arch::acpi::has_8042);
    match flag {
        Some(true) => log::info!("keyboard: the FADT lists an 8042 controller"),
        Some(false) => log::info!("keyboard: the FADT lists no 8042 controller; probing"),
        None => log::info!("keyboard: no 8042 flag in the ACPI tables; probing"),
    }
    let configuration = match set_up_controller() {
        Ok(configuration) => configuration,
        Err(reason) => {
            log::info!("keyboard: no PS/2 keyboard ({reason})");
            return;
        }
    };
    if let Err(reason) = crate::arch::ioapic::route_keyboard(rsdp) {
        log::warn!("keyboard: its interrupt cannot be routed ({reason}); no keyboard input");
        return;
    }
    if let Err(reason) = write_configuration(configuration | KEYBOARD_INTERRUPT) {
        log::warn!("keyboard: {reason}; no keyboard input");
        return;
    }
    // A byte that arrived before the interrupt was on raised no edge: take it now.
    interrupt();
    log::info!("keyboard: PS/2 keyboard on IRQ 1 (scan code set 1, translated)");
}

/// The keyboard's interrupt: decodes every byte the controller holds and hands what the keys
/// send to the console.
pub fn interrupt() {
    let mut keyboard = KEYBOARD.lock();
    for _ in 0..FLUSH_MAX {
        let status = read_port(STATUS_PORT);
        if status & OUTPUT_FULL == 0 {
            break;
        }
        let byte = read_port(DATA_PORT);
        if status & FROM_AUXILIARY == 0 {
            let sent = keyboard.scan_code(byte);
            if !sent.as_slice().is_empty() {
                super::keyboard_input(sent.as_slice());
            }
        }
    }
}
