//! `--json`: the whole [`Report`] as one JSON document, for tools.

use std::io::{self, Write};

use super::Exporter;
use crate::report::Report;

/// JSON exporter.
pub struct Json;

impl Exporter for Json {
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, report)?;
        writeln!(out)
    }
}
