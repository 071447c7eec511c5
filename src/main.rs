//! The `kuma-identity-webhook` command.

mod cli;

/// mimalloc rather than glibc's malloc: every review allocates and frees its parsed objects,
/// verdict and response on whichever worker thread runs it, and glibc's arenas and locks took
/// ~18 % of the server's CPU under load (benches/https/run.sh measures the difference).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::run()
}
