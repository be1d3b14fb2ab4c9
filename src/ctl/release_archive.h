/* The archive of a pack release (pack.tar.gz), written the way Attune's API
 * writes it: a deterministic GNU tar of the pack's files, gzip-compressed. */
#ifndef ATTUNE_CTL_RELEASE_ARCHIVE_H
#define ATTUNE_CTL_RELEASE_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One regular file of a release, as its manifest lists it. */
struct release_file {
    char *path; /* relative to the pack folder, '/'-separated, UTF-8 */
    char *full; /* where to read it */
    uint64_t size;
    bool executable; /* any execute bit set */
    char sha256[65]; /* lowercase hex */
};

/* Writes to fd the gzip stream of the tar holding each file (in the order
 * given, which must be the manifest's) as "{pack_ref}/{path}". Returns 0 with
 * the SHA-256 of what was written (lowercase hex) and its size, or a negative
 * errno with the reason in err. */
int release_archive_write(int fd, const char *pack_ref, const struct release_file *files,
                          size_t nfiles, char digest[65], uint64_t *size, char *err, size_t errlen);

/* Lowercase hex of a 32-byte SHA-256. */
void release_hex(const unsigned char md[32], char out[65]);

#endif
