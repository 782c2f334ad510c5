//! The `goquery` binary: a thin shell over the goquery library. Exit codes are listed
//! in `goquery --help` and in `goquery::exit`; a closed output pipe exits 0.
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// Large query buffers on transparent huge pages: fewer page faults per query.
#[global_allocator]
static ALLOC: goquery::hugealloc::HugePageAlloc = goquery::hugealloc::HugePageAlloc;

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = goquery::exit_code(&e);
            if code != goquery::exit::OK {
                let _ = writeln!(std::io::stderr(), "goquery: {e:#}");
            }
            ExitCode::from(code)
        }
    }
}

fn run() -> anyhow::Result<u8> {
    goquery::hugealloc::keep_freed_memory();
    let args = goquery::Args::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut err = std::io::stderr();
    let outcome = goquery::run(&args, &mut out, &mut err)?;
    out.flush()?;
    Ok(match outcome {
        goquery::Outcome::Complete => goquery::exit::OK,
        goquery::Outcome::SkippedBlocks(_) => goquery::exit::PARTIAL,
    })
}
