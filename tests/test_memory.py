"""tf_metatasnet.memory: the C heap's free pages go back to the system."""

import ctypes
import ctypes.util

from tf_metatasnet.memory import release_free_memory


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_release_free_memory_returns_freed_heap_blocks_to_the_system():
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size, count = 64 * 1024, 2000  # 125 MiB in blocks below glibc's mmap threshold: heap memory
    blocks = [libc.malloc(size) for _ in range(count)]
    for block in blocks:
        ctypes.memset(block, 1, size)  # touch every page
    for block in blocks[:-1]:  # the last one pins the heap's top: free() alone cannot shrink it
        libc.free(block)
    before = _rss_mib()
    assert release_free_memory() is True
    after = _rss_mib()
    libc.free(blocks[-1])
    assert before - after > 60, (before, after)
    assert release_free_memory() in (True, False)  # nothing (much) left to release: still fine
