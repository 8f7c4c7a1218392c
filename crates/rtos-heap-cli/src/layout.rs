//! The device layout chosen at run time (`--target`, `--word-bits`, `--alignment`) and the one
//! place where it becomes the core crate's type parameter [`rtos_heap::Target`].

use std::fmt;

/// A device preset for `--target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// 32-bit Arm Cortex-M: 4-byte words, `portBYTE_ALIGNMENT` 8.
    CortexM,
    /// 32-bit RISC-V: 4-byte words, `portBYTE_ALIGNMENT` 8 (the kernel's default for RV32).
    Riscv32,
    /// 64-bit RISC-V: 8-byte words, `portBYTE_ALIGNMENT` 8.
    Riscv64,
    /// The FreeRTOS POSIX/Linux port on x86-64: 8-byte words, `portBYTE_ALIGNMENT` 8.
    X86_64,
    /// 64-bit Armv8-A ports: 8-byte words, `portBYTE_ALIGNMENT` 16.
    Aarch64,
    /// 32-bit MCU with `portBYTE_ALIGNMENT` 4 (e.g. Xtensa ESP32, older ports).
    Mcu32Align4,
}

impl Preset {
    /// The layout of the preset.
    pub fn layout(self) -> Layout {
        let (word, align) = match self {
            Preset::CortexM | Preset::Riscv32 => (4, 8),
            Preset::Riscv64 | Preset::X86_64 => (8, 8),
            Preset::Aarch64 => (8, 16),
            Preset::Mcu32Align4 => (4, 4),
        };
        Layout { word, align }
    }
}

/// Word size and `portBYTE_ALIGNMENT` of the device a heap is simulated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Layout {
    /// Bytes in a pointer / `size_t`: 4 or 8.
    pub word: usize,
    /// `portBYTE_ALIGNMENT`: 4, 8 or 16.
    pub align: usize,
}

impl Layout {
    /// A supported layout from word *bits* and alignment, or a message saying what is supported.
    ///
    /// # Errors
    /// A message when the combination is not one rtos-heap supports.
    pub fn new(word_bits: usize, align: usize) -> Result<Self, String> {
        if word_bits != 32 && word_bits != 64 {
            return Err(format!("--word-bits must be 32 or 64, not {word_bits}"));
        }
        if ![4, 8, 16].contains(&align) {
            return Err(format!("--alignment must be 4, 8 or 16, not {align}"));
        }
        Ok(Layout {
            word: word_bits / 8,
            align,
        })
    }

    /// `xHeapStructSize`: two words rounded up to the alignment.
    pub fn header(self) -> usize {
        (2 * self.word).div_ceil(self.align) * self.align
    }

    /// heap_2/4/5 block size of a request: `round_up(n + header, align)`.
    pub fn wanted(self, n: u64) -> u64 {
        (n + self.header() as u64).div_ceil(self.align as u64) * self.align as u64
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-bit words, portBYTE_ALIGNMENT {}, header {} B",
            self.word * 8,
            self.align,
            self.header()
        )
    }
}

/// Calls the generic function `$f::<T>($args)` with `T` the [`rtos_heap::Target`] of a runtime
/// [`Layout`]: the single dispatch from a runtime choice to the core crate's type parameter.
#[macro_export]
macro_rules! with_layout {
    ($layout:expr, $f:ident ( $($arg:expr),* $(,)? )) => {
        match ($layout.word, $layout.align) {
            (4, 4) => $f::<rtos_heap::Target<4, 4>>($($arg),*),
            (4, 8) => $f::<rtos_heap::Target<4, 8>>($($arg),*),
            (4, 16) => $f::<rtos_heap::Target<4, 16>>($($arg),*),
            (8, 4) => $f::<rtos_heap::Target<8, 4>>($($arg),*),
            (8, 8) => $f::<rtos_heap::Target<8, 8>>($($arg),*),
            (8, 16) => $f::<rtos_heap::Target<8, 16>>($($arg),*),
            (w, a) => unreachable!("layout {w}/{a} is rejected by Layout::new"),
        }
    };
}

/// The heap schemes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// heap_1: bump allocator, frees do nothing.
    Heap1,
    /// heap_2: best fit, no merging.
    Heap2,
    /// heap_3: the C library's allocator (simulated with a byte limit on requested bytes).
    Heap3,
    /// heap_4: first fit, merging.
    Heap4,
    /// heap_5: heap_4 over several regions.
    Heap5,
}

impl Scheme {
    /// Every scheme, in order.
    pub const ALL: [Scheme; 5] = [
        Scheme::Heap1,
        Scheme::Heap2,
        Scheme::Heap3,
        Scheme::Heap4,
        Scheme::Heap5,
    ];

    /// `heap_4` style name.
    pub fn c_name(self) -> &'static str {
        match self {
            Scheme::Heap1 => "heap_1",
            Scheme::Heap2 => "heap_2",
            Scheme::Heap3 => "heap_3",
            Scheme::Heap4 => "heap_4",
            Scheme::Heap5 => "heap_5",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.c_name())
    }
}

/// Parses a byte count: `65536`, `64K`, `64KiB`, `1M`, `0x10000`.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let bad = || format!("`{s}` is not a byte count (examples: 65536, 64K, 1M, 0x10000)");
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return usize::from_str_radix(h, 16).map_err(|_| bad());
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| bad())?;
    let mul = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => return Err(bad()),
    };
    n.checked_mul(mul).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtos_heap::TargetLayout;

    #[test]
    fn header_matches_the_core_crate() {
        for (w, a) in [(4, 4), (4, 8), (4, 16), (8, 4), (8, 8), (8, 16)] {
            let l = Layout::new(w * 8, a).unwrap();
            fn hdr<T: TargetLayout>() -> usize {
                T::HEADER
            }
            assert_eq!(l.header(), with_layout!(l, hdr()), "{l}");
        }
    }

    #[test]
    fn presets_and_errors() {
        assert_eq!(Preset::CortexM.layout().header(), 8);
        assert_eq!(Preset::X86_64.layout().header(), 16);
        assert!(Layout::new(16, 8).is_err());
        assert!(Layout::new(32, 2).is_err());
        // semantics §0 examples, A = 8: n=1 → 16/24, n=9 → 24/32, n=100 → 112/120.
        let (m, h) = (Preset::CortexM.layout(), Preset::X86_64.layout());
        assert_eq!((m.wanted(1), h.wanted(1)), (16, 24));
        assert_eq!((m.wanted(9), h.wanted(9)), (24, 32));
        assert_eq!((m.wanted(100), h.wanted(100)), (112, 120));
    }

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("64K"), Ok(65536));
        assert_eq!(parse_bytes("96KiB"), Ok(98304));
        assert_eq!(parse_bytes("1M"), Ok(1 << 20));
        assert_eq!(parse_bytes("0x100"), Ok(256));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert!(parse_bytes("12Q").is_err());
        assert!(parse_bytes("").is_err());
    }
}
