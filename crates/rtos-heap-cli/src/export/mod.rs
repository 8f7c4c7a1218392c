//! Output formats: one exporter per file, behind one trait.

pub(crate) mod html;
mod json;
mod table;

use std::io::{self, Write};

use crate::report::Report;

pub use html::Html;
pub use json::Json;
pub use table::Table;

/// Renders a [`Report`].
pub trait Exporter {
    /// Writes the report.
    ///
    /// # Errors
    /// The writer's errors.
    fn write(&self, report: &Report, out: &mut dyn Write) -> io::Result<()>;
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` and the noun in the right number: `1 free`, `2,345 frees`.
pub fn count(n: impl TryInto<usize>, one: &str, many: &str) -> String {
    let n = n.try_into().unwrap_or(usize::MAX);
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts() {
        assert_eq!(super::count(1u64, "free", "frees"), "1 free");
        assert_eq!(super::count(0u64, "free", "frees"), "0 frees");
        assert_eq!(super::count(99_892u64, "free", "frees"), "99,892 frees");
        assert_eq!(super::count(1usize, "byte", "bytes"), "1 byte");
    }

    #[test]
    fn thousands() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(98304), "98,304");
        assert_eq!(super::thousands(1234567), "1,234,567");
    }
}
