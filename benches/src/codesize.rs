//! Code size of each allocator's allocate + free path, measured on the release `bench-driver`.
//!
//! Method: every subject's `alloc` and `free` are `#[inline(never)]` functions with a distinct
//! name (`<…::TalcSubject as …::BenchAlloc>::alloc`). From `objdump -d` of the binary we follow
//! every direct `call` and `jmp` to another function, starting at those two roots, and add up the
//! sizes (`nm -S`) of the functions reached. The walk stops at the shared machinery of the
//! standard library (`core::`, `alloc::`, `std::`: panics, formatting), at anything with `panic`
//! in its name, and at libc (PLT stubs, GOT slots bound to shared-library symbols), which are not
//! part of any allocator. Calls through a GOT slot of the executable itself (how Rust calls another
//! crate's non-generic function in a position-independent executable) are followed; other indirect
//! calls are not (none of the measured allocators makes one on these paths).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The functions of a binary and the direct calls and jumps between them.
#[derive(Debug, Default)]
pub struct CallGraph {
    /// Start address → (size in bytes, demangled name).
    pub functions: HashMap<u64, (u64, String)>,
    /// Start address → start addresses of the functions it calls or jumps to.
    pub edges: HashMap<u64, BTreeSet<u64>>,
    /// Every (address, name) symbol: identical functions folded by the linker share an address
    /// under several names.
    pub symbols: Vec<(u64, String)>,
}

impl CallGraph {
    /// Reads `binary` with `nm` and `objdump` (binutils).
    pub fn of_binary(binary: &Path) -> Result<CallGraph> {
        let nm = Command::new("nm")
            .args(["-C", "-S", "--defined-only"])
            .arg(binary)
            .output()
            .context("running nm")?;
        if !nm.status.success() {
            bail!("nm failed on {}", binary.display());
        }
        let relocs = Command::new("objdump")
            .arg("-R")
            .arg(binary)
            .output()
            .context("running objdump -R")?;
        let dis = Command::new("objdump")
            .args(["-d", "-C", "--no-show-raw-insn"])
            .arg(binary)
            .output()
            .context("running objdump")?;
        if !dis.status.success() {
            bail!("objdump failed on {}", binary.display());
        }
        Ok(CallGraph::parse(
            &String::from_utf8_lossy(&nm.stdout),
            &String::from_utf8_lossy(&dis.stdout),
            &String::from_utf8_lossy(&relocs.stdout),
        ))
    }

    /// Builds the graph from `nm -C -S`, `objdump -d -C --no-show-raw-insn` and `objdump -R`
    /// listings. Calls through the GOT (`call *0x…(%rip)  # slot`, how Rust calls another crate's
    /// function in a position-independent executable) are resolved through the slot's
    /// `R_X86_64_RELATIVE` relocation; slots bound to shared-library symbols are not followed.
    pub fn parse(nm: &str, objdump: &str, relocs: &str) -> CallGraph {
        let mut g = CallGraph::default();
        let mut got: HashMap<u64, u64> = HashMap::new();
        for line in relocs.lines() {
            // "000000000017d690 R_X86_64_RELATIVE  *ABS*+0x0000000000056e20"
            let mut it = line.split_whitespace();
            if let (Some(slot), Some("R_X86_64_RELATIVE"), Some(v)) =
                (it.next(), it.next(), it.next())
                && let (Ok(slot), Some(target)) = (
                    u64::from_str_radix(slot, 16),
                    v.strip_prefix("*ABS*+0x")
                        .and_then(|t| u64::from_str_radix(t, 16).ok()),
                )
            {
                got.insert(slot, target);
            }
        }
        for line in nm.lines() {
            // "addr size type name"
            let mut it = line.splitn(4, ' ');
            let (Some(a), Some(s), Some(t), Some(name)) =
                (it.next(), it.next(), it.next(), it.next())
            else {
                continue;
            };
            if !matches!(t, "t" | "T" | "W" | "w") {
                continue;
            }
            if let (Ok(a), Ok(s)) = (u64::from_str_radix(a, 16), u64::from_str_radix(s, 16)) {
                g.functions
                    .entry(a)
                    .or_insert_with(|| (s, name.to_string()));
                g.symbols.push((a, name.to_string()));
            }
        }
        let mut current = None;
        for line in objdump.lines() {
            if let Some(head) = line.strip_suffix(">:") {
                // "0000000000012340 <name>:"
                current = head
                    .split_once(" <")
                    .and_then(|(a, _)| u64::from_str_radix(a.trim(), 16).ok());
                continue;
            }
            let Some(cur) = current else { continue };
            let Some((_, insn)) = line.split_once(":\t") else {
                continue;
            };
            let mut words = insn.split_whitespace();
            let Some(op) = words.next() else { continue };
            if !(op.starts_with("call") || op.starts_with('j')) {
                continue;
            }
            let Some(operand) = words.next() else {
                continue;
            };
            let target = if operand.starts_with('*') {
                // Indirect: only a GOT slot named in objdump's "# slot <…>" comment is followed.
                insn.split_once("# ")
                    .and_then(|(_, c)| c.split_whitespace().next())
                    .and_then(|slot| u64::from_str_radix(slot, 16).ok())
                    .and_then(|slot| got.get(&slot).copied())
            } else {
                u64::from_str_radix(operand, 16).ok()
            };
            let Some(target) = target else {
                continue;
            };
            // A jump inside the same function is control flow, not a call.
            if let Some(&(size, _)) = g.functions.get(&cur)
                && target >= cur
                && target < cur + size.max(1)
            {
                continue;
            }
            if let Some(f) = g.containing(target) {
                g.edges.entry(cur).or_default().insert(f);
            }
        }
        g
    }

    /// The start of the function that contains `addr`.
    fn containing(&self, addr: u64) -> Option<u64> {
        if self.functions.contains_key(&addr) {
            return Some(addr);
        }
        self.functions
            .iter()
            .find(|(a, (s, _))| addr > **a && addr < **a + *s)
            .map(|(a, _)| *a)
    }

    /// Function starts whose demangled name satisfies `pred`.
    pub fn find(&self, pred: impl Fn(&str) -> bool) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .symbols
            .iter()
            .filter(|(_, n)| pred(n))
            .map(|(a, _)| *a)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every function reachable from `roots` (roots included), not entering [`is_shared`] ones.
    pub fn reachable(&self, roots: &[u64]) -> BTreeSet<u64> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<u64> = roots.to_vec();
        while let Some(f) = stack.pop() {
            let Some((_, name)) = self.functions.get(&f) else {
                continue;
            };
            if is_shared(name) || !seen.insert(f) {
                continue;
            }
            if let Some(next) = self.edges.get(&f) {
                stack.extend(next.iter().copied());
            }
        }
        seen
    }

    /// Sum of the sizes of `set`.
    pub fn bytes(&self, set: &BTreeSet<u64>) -> u64 {
        set.iter()
            .filter_map(|a| self.functions.get(a))
            .map(|f| f.0)
            .sum()
    }

    /// Names of `set`, sorted.
    pub fn names(&self, set: &BTreeSet<u64>) -> Vec<String> {
        let mut v: Vec<String> = set
            .iter()
            .filter_map(|a| self.functions.get(a))
            .map(|f| f.1.clone())
            .collect();
        v.sort();
        v
    }
}

/// Functions that belong to no allocator: the standard library's panic and formatting paths and
/// libc stubs.
pub fn is_shared(name: &str) -> bool {
    let n = name.trim_start_matches('<');
    n.starts_with("core::")
        || n.starts_with("alloc::")
        || n.starts_with("std::")
        || n.contains("panic")
        || n.contains("@plt")
        || n.starts_with("_Unwind")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_calls_and_tail_jumps_but_not_the_standard_library() {
        let nm = "\
0000000000001000 0000000000000020 T <x::A as x::BenchAlloc>::alloc
0000000000001020 0000000000000010 t x::helper
0000000000001030 0000000000000030 t x::tail
0000000000001060 0000000000000100 T core::panicking::panic
0000000000001160 0000000000000008 t x::unused
0000000000001000 0000000000000020 T <x::B as x::BenchAlloc>::alloc
0000000000001200 0000000000000040 t y::other_crate
";
        let objdump = "\
0000000000001000 <<x::A as x::BenchAlloc>::alloc>:
    1000:\tcall   1020 <x::helper>
    1005:\tjne    1010 <<x::A as x::BenchAlloc>::alloc+0x10>
    100a:\tjmp    1030 <x::tail>
0000000000001020 <x::helper>:
    1020:\tcall   1060 <core::panicking::panic>
0000000000001030 <x::tail>:
    1030:\tjmp    *0x100(%rip)        # 2000 <_DYNAMIC+0x10>
    1036:\tcall   *0x100(%rip)        # 2008 <_DYNAMIC+0x18>
0000000000001200 <y::other_crate>:
    1200:\tret
";
        let relocs = "\
0000000000002000 R_X86_64_RELATIVE  *ABS*+0x0000000000001200
0000000000002008 R_X86_64_GLOB_DAT  memset@GLIBC_2.2.5
";
        let g = CallGraph::parse(nm, objdump, relocs);
        let roots = g.find(|n| n.ends_with("BenchAlloc>::alloc"));
        assert_eq!(roots, vec![0x1000]);
        let r = g.reachable(&roots);
        assert_eq!(g.bytes(&r), 0x20 + 0x10 + 0x30 + 0x40);
        assert_eq!(g.names(&r).len(), 4);
        // A function folded with another one is found under its own name too.
        assert_eq!(
            g.find(|n| n == "<x::B as x::BenchAlloc>::alloc"),
            vec![0x1000]
        );
    }
}
