//! `--token` off the command line: `ps` and `/proc/<pid>/cmdline` show every process's
//! arguments to every user. When the token came as an argument, the process re-executes itself
//! at once without it (same pid), handing the token over through an inherited pipe whose number
//! is in [`FD_VAR`]; the new image reads it and removes the variable. The token is visible for
//! the few milliseconds before the first line of `main` runs. Unix only; on Windows the flag's
//! help says to prefer `WEGENT_TOKEN`.

use std::ffi::OsString;

/// The environment variable naming the pipe that carries the token across the re-exec.
pub const FD_VAR: &str = "WEGENT_TOKEN_FD";

/// `args` (without the program name) with `--token VALUE` / `--token=VALUE` removed, and the
/// value; `None` if there is no token argument. Arguments after `--` are left alone.
pub fn strip_token(args: &[OsString]) -> Option<(Vec<OsString>, OsString)> {
    let mut kept = Vec::with_capacity(args.len());
    let mut token = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            kept.push(arg.clone());
            kept.extend(iter.cloned());
            break;
        }
        if arg == "--token" {
            match iter.next() {
                Some(value) => token = Some(value.clone()),
                // A dangling `--token`: let the parser report it.
                None => kept.push(arg.clone()),
            }
            continue;
        }
        if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix("--token=")) {
            token = Some(OsString::from(value));
            continue;
        }
        kept.push(arg.clone());
    }
    token.map(|t| (kept, t))
}

/// If the token is among this process's arguments, re-execute without it (does not return
/// then). Call first in `main`, while the process has one thread.
#[cfg(unix)]
pub fn reexec_without_token() {
    use std::io::Write;
    use std::os::unix::io::FromRawFd;
    use std::os::unix::process::CommandExt;

    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some((kept, token)) = strip_token(&args) else {
        return;
    };
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut fds = [0; 2];
    // SAFETY: pipe writes two new descriptors into `fds`.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return;
    }
    let (read_fd, write_fd) = (fds[0], fds[1]);
    {
        // SAFETY: write_fd was just created and is owned here; the File closes it.
        let mut writer = unsafe { std::fs::File::from_raw_fd(write_fd) };
        // A token is far below the pipe's buffer (64 KiB): this write does not block.
        if writer.write_all(token.as_encoded_bytes()).is_err() {
            // SAFETY: read_fd is ours and unused.
            unsafe { libc::close(read_fd) };
            return;
        }
    }
    let err = std::process::Command::new(exe)
        .args(kept)
        .env(FD_VAR, read_fd.to_string())
        .exec();
    // Only reached if exec failed: carry on with the token visible, and say so.
    eprintln!("warning: could not restart without the token on the command line ({err}); prefer WEGENT_TOKEN");
    // SAFETY: read_fd is ours; the pipe is no longer needed.
    unsafe { libc::close(read_fd) };
}

/// The token handed over by [`reexec_without_token`], if this image was started that way. The
/// variable is removed and the pipe closed. Call while the process has one thread.
#[cfg(unix)]
pub fn take_handed_over_token() -> Option<String> {
    use std::io::Read;
    use std::os::unix::io::FromRawFd;

    let fd: libc::c_int = std::env::var(FD_VAR).ok()?.parse().ok()?;
    std::env::remove_var(FD_VAR);
    if fd < 3 {
        return None;
    }
    // SAFETY: the descriptor was inherited for exactly this purpose and is read once, here.
    let mut reader = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut token = String::new();
    reader.read_to_string(&mut token).ok()?;
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_token_argument_is_removed_in_both_spellings_and_nothing_else() {
        assert_eq!(
            strip_token(&os(&["--token", "wg-1", "run", "-v"])),
            Some((os(&["run", "-v"]), "wg-1".into()))
        );
        assert_eq!(
            strip_token(&os(&["status", "--token=eyJ.a.b"])),
            Some((os(&["status"]), "eyJ.a.b".into()))
        );
        assert_eq!(strip_token(&os(&["run", "--max-slots", "3"])), None);
        assert_eq!(
            strip_token(&os(&["--token", "t", "--", "--token", "x"])),
            Some((os(&["--", "--token", "x"]), "t".into()))
        );
        assert_eq!(strip_token(&os(&["--token"])), None);
    }
}
