//! `rtos-heap`: replay FreeRTOS allocation traces against every heap scheme, size
//! `configTOTAL_HEAP_SIZE`, compare schemes and draw the heap. See `docs/cli.md`.

mod cli;
mod inspect_cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
