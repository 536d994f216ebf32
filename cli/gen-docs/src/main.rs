//! `twofold-gen-docs [--check] [ROOT]`: writes twofold's man pages and shell completions
//! into ROOT/packaging/man and ROOT/packaging/completions (ROOT: this repository). With
//! `--check`, writes nothing and exits 1 when the committed files are stale.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut check = false;
    let mut root = None;
    for arg in std::env::args_os().skip(1) {
        match arg.to_str() {
            Some("--check") => check = true,
            Some("-h" | "--help") => {
                println!("usage: twofold-gen-docs [--check] [ROOT]");
                return ExitCode::SUCCESS;
            }
            _ if root.is_none() => root = Some(PathBuf::from(arg)),
            _ => {
                eprintln!("twofold-gen-docs: usage: twofold-gen-docs [--check] [ROOT]");
                return ExitCode::from(2);
            }
        }
    }
    let root = root.unwrap_or_else(twofold_gen_docs::repo_root);
    let result = if check {
        twofold_gen_docs::stale(&root).map(|problems| {
            for p in &problems {
                eprintln!("twofold-gen-docs: {p}");
            }
            problems.is_empty()
        })
    } else {
        twofold_gen_docs::write_all(&root).map(|written| {
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
            eprintln!("twofold-gen-docs: {e}");
            ExitCode::FAILURE
        }
    }
}
