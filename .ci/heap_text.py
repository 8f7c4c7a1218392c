#!/usr/bin/env python3
"""Bytes of code of the heap in a linked firmware: the text symbols that are not the C runtime
(its mem* functions included), the firmware's main and keep-table, the scheduler stubs, the
application hooks or the critical-section implementation. With --ram: bytes of the library's statics (data and bss) other than the heap
array itself. Usage: heap_text.py ELF NM [--ram]"""
import re
import subprocess
import sys

elf, nm = sys.argv[1], sys.argv[2]
ram = "--ram" in sys.argv[3:]
out = subprocess.run([nm, "-C", "-S", "--size-sort", elf], capture_output=True, text=True, check=True).stdout
runtime = re.compile(
    r"^(main|_start|_mainCRTStartup|_exit|exit|atexit|__libc_\w+|__call_exitprocs|__register_exitproc"
    r"|register_fini|frame_dummy|__do_global_\w+|deregister_tm_clones|register_tm_clones|_init|_fini"
    r"|vTaskSuspendAll|xTaskResumeAll|vApplicationMallocFailedHook|oracle_assert"
    r"|vApplicationGetRandomHeapCanary|vAssertCalled|_critical_section_1_0_\w+"
    r"|memset|memcpy|memmove|__aeabi_mem\w*|_sbrk\w*|_\w+_r|__\w+_veneer)$"
)
total = 0
for line in out.splitlines():
    parts = line.split(None, 3)
    if len(parts) != 4:
        continue
    size, kind, name = int(parts[1], 16), parts[2], parts[3]
    if ram:
        if kind in "dDbB" and name.startswith("rtos_heap") and "UC_HEAP" not in name:
            total += size
    elif kind in "tT" and not runtime.match(name):
        total += size
print(total)
