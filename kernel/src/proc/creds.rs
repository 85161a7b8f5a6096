//! A process's capability sets (`capget`, `capset`) and its bounding set (`prctl`'s
//! `PR_CAPBSET_READ` and `PR_CAPBSET_DROP`). Every process runs as root here, so a process
//! starts with every capability permitted, effective and in the bounding set, and none
//! inheritable; it can give capabilities up with `capset`, and drop them from the bounding set
//! for good. Fork copies the sets; `execve` gives root's back within the bounding set, as Linux
//! does for a program run by uid 0 (`cap_bprm_creds_from_file`). Linux keeps them per thread;
//! here a process's threads share them. Protected by the process's `capabilities` lock.

/// The highest capability number Linux knows (`CAP_CHECKPOINT_RESTORE`).
const CAP_LAST_CAP: u32 = 40;
/// Every capability.
pub const CAP_FULL_SET: u64 = (1 << (CAP_LAST_CAP + 1)) - 1;
/// `CAP_SETPCAP`: lets `capset` add any capability of the bounding set to the inheritable one.
pub const CAP_SETPCAP: u64 = 1 << 8;

/// The three capability sets, and the bounding set that limits what `execve` grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub bounding: u64,
}

impl Capabilities {
    /// Root's sets at boot: everything permitted, effective and in the bounding set.
    pub const ROOT: Self = Self {
        effective: CAP_FULL_SET,
        permitted: CAP_FULL_SET,
        inheritable: 0,
        bounding: CAP_FULL_SET,
    };

    /// The sets after `execve` of a program by root (Linux, whose file sets count as full for
    /// uid 0): permitted and effective become the inheritable set and the bounding set's
    /// capabilities; the inheritable and bounding sets stay.
    pub fn after_exec(&self) -> Self {
        let permitted = self.inheritable | self.bounding;
        Self {
            effective: permitted,
            permitted,
            ..*self
        }
    }

    /// `capability`'s bit when Linux knows it (`cap_valid`).
    pub fn bit(capability: u64) -> Option<u64> {
        (capability <= u64::from(CAP_LAST_CAP)).then(|| 1 << capability)
    }

    /// Whether a process with these sets may change them to `new` (Linux's `cap_capset`): no
    /// capability newly permitted, none effective that is not permitted, and none newly
    /// inheritable unless permitted (with `CAP_SETPCAP`: unless in the bounding set) and in
    /// the bounding set.
    pub fn allows(&self, new: &Self) -> bool {
        let inheritable_bound = if self.effective & CAP_SETPCAP != 0 {
            self.bounding
        } else {
            self.inheritable | self.permitted
        };
        new.permitted & !self.permitted == 0
            && new.effective & !new.permitted == 0
            && new.inheritable & !(self.inheritable | inheritable_bound) == 0
            && new.inheritable & !(self.inheritable | self.bounding) == 0
    }
}
