/* Memory for secrets the worker keeps for its whole life (the encryption key
 * and the JWT secret of the configuration): kept out of core dumps, locked in
 * RAM where the memory lock limit allows, and wiped when freed. */
#ifndef ATTUNE_CORE_SECMEM_H
#define ATTUNE_CORE_SECMEM_H

/* A copy of s in its own page-aligned mapping, marked MADV_DONTDUMP and,
 * when RLIMIT_MEMLOCK allows, mlock'ed so that it never reaches swap.
 * Aborts when no memory can be mapped, as xmalloc does. */
char *secmem_strdup(const char *s);

/* Wipes and unmaps a string from secmem_strdup; NULL does nothing. */
void secmem_free(char *s);

#endif
