//! The device memory an inspection reads: a raw dump placed at an address, or the `PT_LOAD`
//! segments of an ELF core file; and the firmware's symbols, from its ELF.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use object::read::elf::{ElfFile32, ElfFile64, FileHeader, ProgramHeader};
use object::{Endian, Endianness, Object, ObjectSymbol};

/// One contiguous piece of device memory.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Device address of the first byte.
    pub addr: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Device memory: the segments an image holds, and how its words are read.
#[derive(Debug, Clone)]
pub struct Memory {
    segments: Vec<Segment>,
    /// Little-endian words (every FreeRTOS port this tool knows of: Cortex-M, RISC-V, x86).
    little: bool,
}

impl Memory {
    /// A raw dump (`dump binary memory`, OpenOCD `dump_image`, …) of memory starting at `addr`.
    pub fn raw(addr: u64, bytes: Vec<u8>) -> Self {
        Memory {
            segments: vec![Segment { addr, bytes }],
            little: true,
        }
    }

    /// Memory from a list of segments (sorted here).
    pub fn from_segments(mut segments: Vec<Segment>, little: bool) -> Self {
        segments.sort_by_key(|s| s.addr);
        Memory { segments, little }
    }

    /// The segments, by address.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// `len` bytes at `addr`, when one segment holds them all.
    pub fn bytes(&self, addr: u64, len: u64) -> Option<&[u8]> {
        let s = self
            .segments
            .iter()
            .find(|s| addr >= s.addr && addr - s.addr < s.bytes.len() as u64)?;
        let start = usize::try_from(addr - s.addr).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        s.bytes.get(start..end)
    }

    /// Whether `len` bytes at `addr` are in the image.
    pub fn covers(&self, addr: u64, len: u64) -> bool {
        self.bytes(addr, len).is_some()
    }

    /// The `word`-byte (4 or 8) word at `addr`, if the image holds it.
    pub fn word(&self, addr: u64, word: usize) -> Option<u64> {
        let b = self.bytes(addr, word as u64)?;
        let v = match (word, self.little) {
            (4, true) => u64::from(u32::from_le_bytes(b.try_into().ok()?)),
            (4, false) => u64::from(u32::from_be_bytes(b.try_into().ok()?)),
            (8, true) => u64::from_le_bytes(b.try_into().ok()?),
            (8, false) => u64::from_be_bytes(b.try_into().ok()?),
            _ => return None,
        };
        Some(v)
    }

    /// Reads `path`: an ELF core file (its `PT_LOAD` segments) when it starts with the ELF magic,
    /// else a raw dump placed at `base` (which must then be given).
    ///
    /// # Errors
    /// An unreadable file, a raw dump without `base`, or an ELF file that is not a core file.
    pub fn load(path: &Path, base: Option<u64>) -> Result<Self> {
        let data =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        if data.starts_with(b"\x7fELF") {
            return core_segments(&data).with_context(|| format!("{}", path.display()));
        }
        let Some(base) = base else {
            bail!(
                "{} is a raw dump: give its device address with --base 0x… (or --elf, to take ucHeap's)",
                path.display()
            );
        };
        if data.is_empty() {
            bail!("{} is empty", path.display());
        }
        Ok(Memory::raw(base, data))
    }
}

fn core_segments(data: &[u8]) -> Result<Memory> {
    match object::FileKind::parse(data)? {
        object::FileKind::Elf32 => segments_of::<object::elf::FileHeader32<Endianness>>(data),
        object::FileKind::Elf64 => segments_of::<object::elf::FileHeader64<Endianness>>(data),
        k => bail!("not an ELF core file ({k:?})"),
    }
}

fn segments_of<H: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<Memory> {
    let header = H::parse(data)?;
    let endian = header.endian()?;
    if header.e_type(endian) != object::elf::ET_CORE {
        bail!(
            "an ELF file but not a core file (give the firmware with --elf and the memory as IMAGE)"
        );
    }
    let mut segments = Vec::new();
    for ph in header.program_headers(endian, data)? {
        if ph.p_type(endian) != object::elf::PT_LOAD {
            continue;
        }
        let bytes = ph
            .data(endian, data)
            .map_err(|()| anyhow::anyhow!("a PT_LOAD segment runs past the end of the file"))?;
        if bytes.is_empty() {
            continue; // not dumped (e.g. read-only text left out of the core)
        }
        segments.push(Segment {
            addr: ph.p_vaddr(endian).into(),
            bytes: bytes.to_vec(),
        });
    }
    if segments.is_empty() {
        bail!("the core file holds no memory (no PT_LOAD segment with contents)");
    }
    Ok(Memory::from_segments(segments, endian.is_little_endian()))
}

/// A symbol of the firmware: address and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Symbol {
    /// Address on the device.
    pub addr: u64,
    /// Size in bytes (0 when the ELF does not say).
    pub size: u64,
}

/// What the firmware's ELF tells: its word size and the heap's symbols.
#[derive(Debug, Clone)]
pub struct Firmware {
    /// 4 or 8.
    pub word: usize,
    /// Data symbols by name (file-local ones too: heap_4.c's statics are `static`).
    pub symbols: HashMap<String, Symbol>,
}

impl Firmware {
    /// Reads the symbols of `path`.
    ///
    /// # Errors
    /// An unreadable or non-ELF file, or one without symbols.
    pub fn load(path: &Path) -> Result<Self> {
        let data =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let (word, file): (usize, object::File<'_>) = match object::FileKind::parse(&*data)
            .with_context(|| format!("{} is not an ELF file", path.display()))?
        {
            object::FileKind::Elf32 => (
                4,
                object::File::Elf32(ElfFile32::parse(&*data).context("bad ELF")?),
            ),
            object::FileKind::Elf64 => (
                8,
                object::File::Elf64(ElfFile64::parse(&*data).context("bad ELF")?),
            ),
            k => bail!("{}: not an ELF file ({k:?})", path.display()),
        };
        let mut symbols = HashMap::new();
        for s in file.symbols() {
            if let Ok(name) = s.name()
                && !name.is_empty()
                && s.address() != 0
            {
                symbols.entry(name.to_string()).or_insert(Symbol {
                    addr: s.address(),
                    size: s.size(),
                });
            }
        }
        if symbols.is_empty() {
            bail!(
                "{} has no symbol table (was it stripped? give the unstripped ELF)",
                path.display()
            );
        }
        Ok(Firmware { word, symbols })
    }

    /// A symbol by name.
    pub fn get(&self, name: &str) -> Option<Symbol> {
        self.symbols.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_words_and_bounds() {
        let m = Memory::raw(0x1000, (0u8..16).collect());
        assert_eq!(m.word(0x1000, 4), Some(0x0302_0100));
        assert_eq!(m.word(0x1008, 8), Some(0x0f0e_0d0c_0b0a_0908));
        assert_eq!(m.word(0x100d, 4), None, "runs past the end");
        assert_eq!(m.word(0xfff, 4), None, "starts before");
        assert!(m.covers(0x1000, 16) && !m.covers(0x1000, 17));
    }

    #[test]
    fn segments_are_searched() {
        let m = Memory::from_segments(
            vec![
                Segment {
                    addr: 0x2000,
                    bytes: vec![1, 0, 0, 0],
                },
                Segment {
                    addr: 0x1000,
                    bytes: vec![2, 0, 0, 0],
                },
            ],
            true,
        );
        assert_eq!(m.word(0x1000, 4), Some(2));
        assert_eq!(m.word(0x2000, 4), Some(1));
        assert_eq!(m.word(0x1800, 4), None);
    }
}
