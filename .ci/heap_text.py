#!/usr/bin/env python3
"""Bytes of code of the heap in a linked firmware: the text symbols that are not the C runtime
(its mem* functions included), the firmware's main and keep-table, the scheduler stubs or the
application hooks. Usage: heap_text.py ELF NM"""
import re
import subprocess
import sys

elf, nm = sys.argv[1], sys.argv[2]
out = subprocess.run([nm, "-C", "-S", "--size-sort", elf], capture_output=True, text=True, check=True).stdout
runtime = re.compile(
    r"^(main|_start|_mainCRTStartup|_exit|exit|atexit|__libc_\w+|__call_exitprocs|__register_exitproc"
    r"|register_fini|frame_dummy|__do_global_\w+|deregister_tm_clones|register_tm_clones|_init|_fini"
    r"|vTaskSuspendAll|xTaskResumeAll|vApplicationMallocFailedHook|oracle_assert"
    r"|memset|memcpy|memmove|__aeabi_mem\w*|_sbrk\w*|_\w+_r|__\w+_veneer)$"
)
total = 0
for line in out.splitlines():
    parts = line.split(None, 3)
    if len(parts) == 4 and parts[2] in "tT" and not runtime.match(parts[3]):
        total += int(parts[1], 16)
print(total)
