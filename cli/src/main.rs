//! `twofold`: the command-line client of `twofoldd`. All of it lives in the library.

fn main() -> std::process::ExitCode {
    twofold_cli::main()
}
