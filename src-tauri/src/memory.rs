//! Giving memory back to the system once a burst of work is over (the token window closed).

/// Returns the free pages at the top of the heap and in malloc's per-thread arenas to the
/// system. glibc keeps them otherwise, and the tray lives for days.
pub fn give_back_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory that malloc holds as free.
    unsafe {
        libc::malloc_trim(0);
    }
}
