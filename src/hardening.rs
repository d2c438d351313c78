//! What the device does to itself at start so other processes of the same user cannot read its
//! secrets: no core dumps or `ptrace` (`/proc/<pid>/environ`, `/proc/<pid>/mem`), and no token
//! on the command line.
//!
//! - Linux: `prctl(PR_SET_DUMPABLE, 0)`, as ssh-agent does. `/proc/<pid>/{environ,mem,…}` then
//!   belong to root, and same-user debuggers cannot attach. Root can still read them (nothing
//!   short of a separate user stops root). Children do not inherit it (reset on `execve`).
//! - macOS: `ptrace(PT_DENY_ATTACH)`, as OpenSSH's ssh-agent does, in release builds only (a
//!   debug build must stay debuggable with lldb). It stops debuggers and `task_for_pid` memory
//!   reads; the environment stays readable to the same user through `sysctl(KERN_PROCARGS2)`,
//!   which nothing prevents, so the token is never put there: see [`crate::cli::argv_token`].
//! - Windows: nothing here; a process's memory is protected by its DACL (same user can read it).

/// Make this process non-dumpable / non-attachable where the platform allows. Call first in
/// `main`, before any secret is read. Failures are reported on stderr and do not stop the start.
pub fn deny_inspection() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with PR_SET_DUMPABLE only changes this process's dumpable flag.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            eprintln!(
                "warning: could not make the process non-dumpable: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    #[cfg(all(target_os = "macos", not(debug_assertions)))]
    {
        // SAFETY: PT_DENY_ATTACH takes no address or data and only affects this process.
        unsafe { libc::ptrace(libc::PT_DENY_ATTACH, 0, std::ptr::null_mut(), 0) };
    }
}
