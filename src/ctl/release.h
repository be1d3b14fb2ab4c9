/* A pack release on disk, made as Attune's API makes it (publish_release in
 * crates/common/src/pack_registry/storage.rs@03eeaa5b): the folder
 * {packs_base_dir}/.releases/sha256/{digest}/ holds pack/ (a copy of the pack
 * folder without .git), pack.tar.gz and manifest.json, read-only; the digest
 * is the SHA-256 of pack.tar.gz. */
#ifndef ATTUNE_CTL_RELEASE_H
#define ATTUNE_CTL_RELEASE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct release {
    char *staging;      /* {base}/.releases/.{uuid}.staging, until published */
    char *dir;          /* {base}/.releases/sha256/{digest} */
    char *content_path; /* dir/pack */
    char *archive_path; /* dir/pack.tar.gz */
    char digest[65];
    uint64_t archive_size;
    json_t *manifest; /* {"format_version": 1, "pack_ref", "version", "files": [...]} */
    bool existed;     /* release_publish found this release there already */
};

/* Copies the pack folder source into a staging folder beside the releases and
 * builds the manifest and the archive there. Returns 0; -EINVAL when the folder
 * cannot be released (a symbolic link, a special file, a name that is not
 * UTF-8); another negative errno otherwise; the reason is in err. */
int release_stage(const char *packs_base_dir, const char *source, const char *pack_ref,
                  const char *version, struct release *r, char *err, size_t errlen);

/* Moves the staged release to r->dir and makes it read-only. When a release
 * with the same digest is there already, it is checked (archive digest,
 * identity, files against the manifest) and kept. */
int release_publish(struct release *r, char *err, size_t errlen);

/* Removes the staging folder if it is still there, and frees r's contents. */
void release_free(struct release *r);

#endif
