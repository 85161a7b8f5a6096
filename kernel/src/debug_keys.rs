//! Keys on COM1 that dump state at any time (DESIGN.md §2). More keys join as subsystems land.

pub fn handle(key: u8) {
    match key {
        b'h' | b'?' => crate::println!("keys: h help, m memory (frames and heap), t timer ticks"),
        b'm' => crate::mm::log_statistics(),
        b't' => crate::println!("timer ticks: {}", crate::arch::apic::ticks()),
        b'\r' | b'\n' => {}
        other => crate::println!("unknown key {:?}; h for help", other as char),
    }
}
