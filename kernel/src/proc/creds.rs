//! A process's capability sets (`capget`, `capset`). Every process runs as root here, so a
//! process starts with every capability permitted and effective, and none inheritable; it can
//! give capabilities up with `capset`. Fork copies the sets; `execve` gives root's back, as
//! Linux does for a program run by uid 0 (`cap_bprm_creds_from_file`). Linux keeps them per
//! thread; here a process's threads share them. Protected by the process's `capabilities`
//! lock.

/// The highest capability number Linux knows (`CAP_CHECKPOINT_RESTORE`).
const CAP_LAST_CAP: u32 = 40;
/// Every capability.
pub const CAP_FULL_SET: u64 = (1 << (CAP_LAST_CAP + 1)) - 1;
/// `CAP_SETPCAP`: lets `capset` add any capability of the bounding set to the inheritable one.
pub const CAP_SETPCAP: u64 = 1 << 8;

/// The three capability sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

impl Capabilities {
    /// Root's sets: everything permitted and effective.
    pub const ROOT: Self = Self {
        effective: CAP_FULL_SET,
        permitted: CAP_FULL_SET,
        inheritable: 0,
    };

    /// Whether a process with these sets may change them to `new` (Linux's `cap_capset`): no
    /// capability newly permitted, none effective that is not permitted, and none newly
    /// inheritable unless permitted (or, with `CAP_SETPCAP`, in the bounding set: all).
    pub fn allows(&self, new: &Self) -> bool {
        let inheritable_bound = if self.effective & CAP_SETPCAP != 0 {
            CAP_FULL_SET
        } else {
            self.inheritable | self.permitted
        };
        new.permitted & !self.permitted == 0
            && new.effective & !new.permitted == 0
            && new.inheritable & !(self.inheritable | inheritable_bound) == 0
    }
}
