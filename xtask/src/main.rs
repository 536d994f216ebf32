//! twofold's development tasks, run as `cargo xtask TASK` (the alias is in
//! .cargo/config.toml):
//!
//! - `gen-docs [--check] [ROOT]`: writes twofold's man pages and shell completions into
//!   ROOT/packaging/man and ROOT/packaging/completions (ROOT: this repository). With
//!   `--check`, writes nothing and exits 1 when the committed files are stale.

mod gen_docs;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "twofold's development tasks"
)]
enum Task {
    /// Writes the man pages and shell completions into packaging/.
    GenDocs {
        /// Write nothing; exit 1 when the committed files are stale.
        #[arg(long)]
        check: bool,
        /// The repository (default: the one this task was built from).
        root: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Task::parse() {
        Task::GenDocs { check, root } => gen_docs(check, root),
    }
}

fn gen_docs(check: bool, root: Option<PathBuf>) -> ExitCode {
    let root = root.unwrap_or_else(gen_docs::repo_root);
    let result = if check {
        gen_docs::stale(&root).map(|problems| {
            for p in &problems {
                eprintln!("xtask gen-docs: {p}");
            }
            problems.is_empty()
        })
    } else {
        gen_docs::write_all(&root).map(|written| {
            for p in &written {
                println!("wrote {}", p.display());
            }
            true
        })
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask gen-docs: {e}");
            ExitCode::FAILURE
        }
    }
}
