# rtos-heap: dump a heap_4 heap for `rtos-heap inspect` from gdb (any gdb connected to the target:
# arm-none-eabi-gdb / gdb-multiarch with OpenOCD, J-Link GDB Server, probe-rs gdb, QEMU, or the
# FreeRTOS POSIX simulator).
#
#   (gdb) source tools/dump-heap.gdb
#   (gdb) dump-heap heap.bin
#   $ rtos-heap inspect heap.bin --facts heap.bin.facts --elf firmware.elf
#
# Writes heap.bin (the bytes of ucHeap) and heap.bin.facts (what inspect needs to read them:
# word size, the array's address and size, xStart, pxEnd, the protector's canary when there is
# one). portBYTE_ALIGNMENT is not a symbol: the facts say 8 (Cortex-M, RISC-V, x86); edit the
# line for a port with another value. For heap_5 dump each region (or the RAM holding them) and
# give --regions to inspect (see docs/cli.md).

define dump-heap
  if $argc != 1
    echo usage: dump-heap FILE  (writes FILE and FILE.facts)\n
  else
    dump binary memory $arg0 &ucHeap[0] &ucHeap[sizeof(ucHeap)]
    set logging file $arg0.facts
    set logging overwrite on
    set logging redirect on
    set logging enabled on
    printf "scheme=heap_4\n"
    printf "word_bytes=%d\n", (int) sizeof(void *)
    printf "portBYTE_ALIGNMENT=8\n"
    printf "base_address=0x%lx\n", (unsigned long) &ucHeap
    printf "bytes=%lu\n", (unsigned long) sizeof(ucHeap)
    printf "xStart_pxNextFreeBlock=0x%lx\n", (unsigned long) xStart.pxNextFreeBlock
    printf "pxEnd=0x%lx\n", (unsigned long) pxEnd
    set logging enabled off
    set logging redirect off
    echo dump-heap: wrote $arg0 and $arg0.facts\n
  end
end

document dump-heap
Dump ucHeap to FILE and the facts `rtos-heap inspect --facts` reads to FILE.facts.
With the heap protector (configENABLE_HEAP_PROTECTOR), add: print/x xHeapCanary, and pass it
to inspect as --canary.
end
