//! Capabilities: `capget` and `capset`, over `proc::creds`, with Linux's three header
//! versions (one 32-bit set each for version 1, two for versions 2 and 3).

use super::errno::{EINVAL, EPERM, ESRCH, Errno, SysResult};
use crate::arch::uaccess::{read_user, write_user};
use crate::proc::creds::Capabilities;

const CAPABILITY_VERSION_1: u32 = 0x1998_0330;
const CAPABILITY_VERSION_2: u32 = 0x2007_1026;
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The 32-bit words per set that header version `header` carries; an unknown version is
/// EINVAL, after the kernel's preferred version is written back into the header.
fn words_per_set(header: u64) -> Result<usize, Errno> {
    match read_user::<u32>(header)? {
        CAPABILITY_VERSION_1 => Ok(1),
        CAPABILITY_VERSION_2 | CAPABILITY_VERSION_3 => Ok(2),
        _ => {
            write_user(header, &CAPABILITY_VERSION_3)?;
            Err(EINVAL)
        }
    }
}

/// The header's pid field.
fn header_pid(header: u64) -> Result<i32, Errno> {
    read_user::<i32>(header + 4)
}

/// `capget(header, data)`: the sets of thread `pid` (0: the caller) as `struct
/// __user_cap_data_struct`s (effective, permitted, inheritable; low words first). With no
/// data pointer only the version is checked (an unknown one is then not an error).
pub fn capget(header: u64, data: u64) -> SysResult {
    let words = words_per_set(header);
    if data == 0 {
        return match words {
            Ok(_) | Err(EINVAL) => Ok(0),
            Err(error) => Err(error),
        };
    }
    let words = words?;
    let pid = header_pid(header)?;
    let caps = match pid {
        ..0 => return Err(EINVAL),
        0 => *super::thread::process().capabilities.lock(),
        pid => *crate::proc::find(pid as u32)
            .ok_or(ESRCH)?
            .capabilities
            .lock(),
    };
    let mut out = [0u32; 6];
    for word in 0..words {
        let shift = 32 * word;
        out[word * 3] = (caps.effective >> shift) as u32;
        out[word * 3 + 1] = (caps.permitted >> shift) as u32;
        out[word * 3 + 2] = (caps.inheritable >> shift) as u32;
    }
    if words == 1 {
        write_user(data, &[out[0], out[1], out[2]])?;
    } else {
        write_user(data, &out)?;
    }
    Ok(0)
}

/// `capset(header, data)`: sets the caller's own sets (another thread's is EPERM), within
/// what [`Capabilities::allows`].
pub fn capset(header: u64, data: u64) -> SysResult {
    let words = words_per_set(header)?;
    let pid = header_pid(header)?;
    let process = super::thread::process();
    if pid != 0 && pid as u32 != crate::sched::current().tid {
        return Err(EPERM);
    }
    let raw: [u32; 6] = if words == 1 {
        let [effective, permitted, inheritable] = read_user::<[u32; 3]>(data)?;
        [effective, permitted, inheritable, 0, 0, 0]
    } else {
        read_user::<[u32; 6]>(data)?
    };
    let set = |index: usize| u64::from(raw[index]) | u64::from(raw[index + 3]) << 32;
    let mut caps = process.capabilities.lock();
    let new = Capabilities {
        effective: set(0),
        permitted: set(1),
        inheritable: set(2),
        bounding: caps.bounding,
    };
    if !caps.allows(&new) {
        return Err(EPERM);
    }
    *caps = new;
    Ok(0)
}
