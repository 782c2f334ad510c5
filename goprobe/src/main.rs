//! The `goprobe` binary: a thin shell over the goprobe library.
use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("goprobe: not built yet");
    ExitCode::from(2)
}
