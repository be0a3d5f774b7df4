/*
 * callbridge._hugearenas: CPython's small-object arenas carved out of 2 MiB-aligned regions the kernel may
 * back with transparent huge pages (optional; installed by callbridge.memory.use_huge_arenas()).
 *
 * Why it exists (issue 19.3): with 100k calls in progress the tracker's objects fill a few hundred MB, and
 * every AMI event touches one random call of them: its channel's dict entry, key, record and strings. On
 * 4 KiB pages each of those touches is a TLB miss as well as a cache miss (the TLB covers a few MB), and the
 * page walk is itself more misses; the per-event cost of ingest doubled from 1k to 100k calls. The kernel's
 * transparent huge pages (2 MiB) cover the same heap with 512 times fewer entries, but Linux gives them only
 * to regions that are 2 MiB-aligned and, in the default "madvise" mode, marked MADV_HUGEPAGE. CPython maps
 * each 1 MiB arena on its own (mmap), so none ever qualifies.
 *
 * What it does: it replaces the arena allocator through the public API (PyObject_SetArenaAllocator, see the
 * C-API "Customize pymalloc Arena Allocator"). Arenas are cut from regions of REGION bytes, 2 MiB-aligned and
 * marked MADV_HUGEPAGE; a freed arena's pages go back to the system at once (MADV_DONTNEED, as munmap would)
 * and its addresses are kept for the next arena. Arenas of a size other than the first one asked, and any
 * region that cannot be mapped, fall back to the allocator that was there before; an arena that allocator
 * gave out before this one was installed is also freed by it (it is outside every region).
 *
 * pymalloc calls these with the GIL held, so nothing here locks.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)
#define REGION ((size_t)64 << 20)
#define MAX_REGIONS 1024 /* 64 GiB of arenas: past that, arenas come from the previous allocator */
#define MIN_ARENA ((size_t)256 << 10) /* CPython's ARENA_SIZE is 1 MiB (64-bit) or 256 KiB */

static PyObjectArenaAllocator previous;
static int installed = 0;
static size_t arena_size = 0; /* the size of the first arena asked: CPython's ARENA_SIZE */
static char *region_start[MAX_REGIONS];
static Py_ssize_t regions = 0;
static char *next_free = NULL, *region_end = NULL; /* the unused tail of the last region */
/* Freed arenas, kept apart from their pages (which went back to the system): a stack of addresses. */
static void *free_arenas[MAX_REGIONS * (REGION / MIN_ARENA)];
static Py_ssize_t arenas_in_use = 0, arenas_free = 0, fallbacks = 0;

static int
new_region(void)
{
    if (regions == MAX_REGIONS) {
        return -1;
    }
    size_t length = REGION + HUGE_PAGE; /* room to align the start */
    char *raw = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        return -1;
    }
    char *start = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    char *end = start + REGION;
    if (start > raw) {
        munmap(raw, (size_t)(start - raw));
    }
    if (raw + length > end) {
        munmap(end, (size_t)(raw + length - end));
    }
    (void)madvise(start, REGION, MADV_HUGEPAGE); /* a kernel without THP refuses: small pages, still correct */
    region_start[regions++] = start;
    next_free = start;
    region_end = end;
    return 0;
}

static int
in_a_region(const char *p)
{
    for (Py_ssize_t i = regions - 1; i >= 0; i--) { /* the newest first: where most arenas are */
        if (p >= region_start[i] && p < region_start[i] + REGION) {
            return 1;
        }
    }
    return 0;
}

static void *
arena_alloc(void *ctx, size_t size)
{
    (void)ctx;
    if (arena_size == 0 && size >= MIN_ARENA && REGION % size == 0) {
        arena_size = size;
    }
    if (size != arena_size) {
        fallbacks++;
        return previous.alloc(previous.ctx, size);
    }
    void *arena;
    if (arenas_free > 0) {
        arena = free_arenas[--arenas_free];
    }
    else {
        if (next_free == NULL || next_free + size > region_end) {
            if (new_region() < 0) {
                fallbacks++;
                return previous.alloc(previous.ctx, size);
            }
        }
        arena = next_free;
        next_free += size;
    }
    arenas_in_use++;
    return arena;
}

static void
arena_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    if (ptr == NULL) {
        return;
    }
    if (size != arena_size || !in_a_region(ptr)) {
        previous.free(previous.ctx, ptr, size);
        return;
    }
    /* The pages go back now, as with munmap (RSS falls when CPython frees an arena); the range stays ours. */
    (void)madvise(ptr, size, MADV_DONTNEED);
    free_arenas[arenas_free++] = ptr; /* never full: it has a place for every arena of every region */
    arenas_in_use--;
}

static PyObject *
install(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    if (installed) {
        Py_RETURN_FALSE;
    }
    PyObjectArenaAllocator ours = {NULL, arena_alloc, arena_free};
    PyObject_GetArenaAllocator(&previous);
    PyObject_SetArenaAllocator(&ours);
    installed = 1;
    Py_RETURN_TRUE;
}

static PyObject *
stats(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return Py_BuildValue("{s:O,s:n,s:n,s:n,s:n,s:n,s:n}", "installed", installed ? Py_True : Py_False,
                         "arena_size", (Py_ssize_t)arena_size, "regions", regions, "region_size",
                         (Py_ssize_t)REGION, "arenas_in_use", arenas_in_use, "arenas_free", arenas_free,
                         "fallbacks", fallbacks);
}

static PyMethodDef methods[] = {
    {"install", install, METH_NOARGS,
     "install() -> bool: put the huge-page arena allocator in place (False when it already was)."},
    {"stats", stats, METH_NOARGS, "stats() -> dict: regions mapped, arenas in use and free, fallbacks."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "callbridge._hugearenas", "pymalloc arenas on transparent huge pages (optional).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__hugearenas(void)
{
    return PyModule_Create(&module);
}
