//! `wegent-executor`: the headless Wegent device. Everything but parsing and the exit code lives in
//! [`wegent_executor::cli`].

use std::process::ExitCode;

use clap::Parser;
use wegent_executor::cli::{argv_token, commands, Cli};

fn main() -> ExitCode {
    // Before anything reads a secret: no same-user debugger or /proc reader, and no token in
    // the arguments `ps` shows (this re-executes the binary if there was one).
    wegent_executor::hardening::deny_inspection();
    #[cfg(unix)]
    argv_token::reexec_without_token();
    #[allow(unused_mut)]
    let mut cli = Cli::parse();
    #[cfg(unix)]
    if let Some(token) = argv_token::take_handed_over_token() {
        cli.global.token = Some(token);
    }
    // Two workers, whatever the core count: the device mostly waits on one socket and a few
    // child processes. A second worker keeps the first heartbeat from queueing behind start-up
    // work (bench: ~10 ms to online vs ~16 ms on one thread); more only add threads and memory.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = wegent_executor::redact::redact(&e.message);
            // Error messages may quote the server.
            let message = wegent_executor::cli::render::terminal_safe(&message);
            eprintln!("error: {message}");
            ExitCode::from(e.code)
        }
    }
}
