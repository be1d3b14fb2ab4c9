/* Memory for long-lived secrets (see secmem.h). */
#include "core/secmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/util.h"

/* The mapping's length is kept in front of the string, at an offset that
 * keeps the string aligned as malloc's blocks are. */
#define SECMEM_HEADER 16

static size_t secmem_map_len(size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (SECMEM_HEADER + len + 1 + page - 1) / page * page;
}

char *secmem_strdup(const char *s)
{
    size_t len = strlen(s), map_len = secmem_map_len(len);
    char *base = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        fputs("attune-worker: out of memory\n", stderr);
        abort();
    }
    /* Both are best effort: the process is non-dumpable and has no core
     * limit anyway, and locking may exceed RLIMIT_MEMLOCK. */
    (void)madvise(base, map_len, MADV_DONTDUMP);
    (void)mlock(base, map_len);
    memcpy(base, &map_len, sizeof(map_len));
    memcpy(base + SECMEM_HEADER, s, len + 1);
    return base + SECMEM_HEADER;
}

void secmem_free(char *s)
{
    if (!s)
        return;
    char *base = s - SECMEM_HEADER;
    size_t map_len;
    memcpy(&map_len, base, sizeof(map_len));
    secure_zero(base, map_len);
    munlock(base, map_len);
    munmap(base, map_len);
}
