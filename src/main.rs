//! The `kuma-identity-webhook` command.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
