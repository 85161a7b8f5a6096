//! Surviving Ctrl-C while QEMU runs.
//!
//! The terminal sends SIGINT to its whole foreground process group: to QEMU, which shuts down
//! cleanly (restoring the terminal), and to this process, which by default would die at once,
//! before it could reap QEMU, remove temporary files or report the outcome. While a
//! [`SigintGuard`] exists, SIGINT only sets a flag here; the previous disposition comes back when
//! the last guard is dropped. Handlers are reset to the default in QEMU by `exec`, so QEMU still
//! sees the signal.

use std::io;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

/// Set by the handler; cleared when the first guard is installed.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How many guards exist and the disposition to restore after the last one.
static STATE: Mutex<State> = Mutex::new(State {
    guards: 0,
    previous: None,
});

struct State {
    guards: usize,
    /// `None` when the disposition was left alone (SIGINT was ignored already).
    previous: Option<libc::sigaction>,
}

extern "C" fn on_sigint(_signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// While alive, SIGINT is caught and recorded instead of ending the process.
#[derive(Debug)]
pub(crate) struct SigintGuard {
    _private: (),
}

impl SigintGuard {
    /// Installs the handler unless another guard already did.
    pub(crate) fn install() -> io::Result<SigintGuard> {
        let mut state = STATE.lock().unwrap_or_else(PoisonError::into_inner);
        if state.guards == 0 {
            INTERRUPTED.store(false, Ordering::SeqCst);
            // SAFETY: `sigaction` structures are plain data for which all-zero is valid; the
            // calls get valid pointers, and the handler only stores to an atomic, which is
            // async-signal-safe.
            unsafe {
                let mut current: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(libc::SIGINT, ptr::null(), &mut current) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // A process started with SIGINT ignored (a background job, `nohup`) keeps
                // ignoring it, and so does QEMU, which inherits ignored signals.
                if current.sa_sigaction != libc::SIG_IGN {
                    let mut action: libc::sigaction = std::mem::zeroed();
                    action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as usize;
                    action.sa_flags = libc::SA_RESTART;
                    libc::sigemptyset(&mut action.sa_mask);
                    if libc::sigaction(libc::SIGINT, &action, ptr::null_mut()) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    state.previous = Some(current);
                }
            }
        }
        state.guards += 1;
        Ok(SigintGuard { _private: () })
    }

    /// Whether SIGINT arrived since the first of the current guards was installed.
    pub(crate) fn interrupted(&self) -> bool {
        INTERRUPTED.load(Ordering::SeqCst)
    }
}

impl Drop for SigintGuard {
    fn drop(&mut self) {
        let mut state = STATE.lock().unwrap_or_else(PoisonError::into_inner);
        state.guards -= 1;
        if state.guards == 0
            && let Some(previous) = state.previous.take()
        {
            // SAFETY: restores a disposition that `sigaction` itself returned. Failure is
            // impossible for a valid signal number and structure, and could not be handled here.
            unsafe {
                libc::sigaction(libc::SIGINT, &previous, ptr::null_mut());
            }
        }
    }
}

/// Whether any guard is installed, so that a test can deliver SIGINT safely.
#[cfg(test)]
pub(crate) fn installed() -> bool {
    STATE.lock().unwrap_or_else(PoisonError::into_inner).guards > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The current SIGINT handler address (or SIG_DFL/SIG_IGN).
    fn current_handler() -> libc::sighandler_t {
        // SAFETY: queries only, with valid pointers.
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            assert_eq!(libc::sigaction(libc::SIGINT, ptr::null(), &mut current), 0);
            current.sa_sigaction
        }
    }

    #[test]
    fn guards_nest_and_restore_the_previous_handler() {
        // Serialised with the run tests, which install guards too.
        let _lock = crate::testutil::script_lock();
        let before = current_handler();
        if before == libc::SIG_IGN {
            // Started with SIGINT ignored (a background job): guards leave it alone.
            let guard = SigintGuard::install().expect("install");
            assert_eq!(current_handler(), libc::SIG_IGN);
            drop(guard);
            return;
        }
        let outer = SigintGuard::install().expect("install");
        let inner = SigintGuard::install().expect("install again");
        assert_ne!(current_handler(), before);
        drop(outer);
        assert_ne!(
            current_handler(),
            before,
            "still guarded by the inner guard"
        );
        // SAFETY: the guard's handler is installed, so SIGINT only sets the flag.
        unsafe {
            libc::raise(libc::SIGINT);
        }
        assert!(inner.interrupted());
        drop(inner);
        assert_eq!(current_handler(), before);
        assert!(!installed());
    }
}
