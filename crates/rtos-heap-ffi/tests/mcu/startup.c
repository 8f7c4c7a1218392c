/*
 * startup.c - the Cortex-M vector table of the C test firmware (QEMU mps2-an385, Cortex-M3): the
 * initial stack at the top of the 4 MiB of RAM at 0x2000_0000, and as reset handler newlib's
 * semihosting start-up `_start` (rdimon.specs: stack, .bss, constructors, main, exit — the exit
 * status becomes QEMU's).
 */
extern void _start(void);

void *const vectors[2] __attribute__((section(".vectors"), used)) = {
    (void *)0x20400000,
    (void *)_start,
};
