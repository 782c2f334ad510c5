//! The `goquery` binary: a thin shell over the goquery library.
use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("goquery: not built yet");
    ExitCode::from(2)
}
