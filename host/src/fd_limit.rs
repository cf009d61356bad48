//! The process's file descriptor limit, raised from its soft value to the hard one at start.
//!
//! Every client connection, Postgres connection and Redis connection holds a descriptor, and the
//! host keeps no count of client connections of its own (as Spin keeps none): the descriptor
//! limit is what bounds them. A common default soft limit (1,024) would let one client holding
//! that many idle sockets stop the listener from accepting anyone else.

/// Most descriptors asked for: Linux refuses more than `fs.nr_open` (2^20 by default), so an
/// unlimited hard limit cannot be the soft one.
const DESCRIPTORS_MAX: libc::rlim_t = 1 << 20;

/// Raises the soft limit to the hard limit (at most [`DESCRIPTORS_MAX`]); returns the limit now
/// in force.
pub fn raise_to_hard_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let wanted = limit.rlim_max.min(DESCRIPTORS_MAX);
    if limit.rlim_cur < wanted {
        let raised = libc::rlimit { rlim_cur: wanted, rlim_max: limit.rlim_max };
        // SAFETY: `raised` is a valid rlimit; the call only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok(limit.rlim_cur)
}
