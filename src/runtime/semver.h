/* Semantic versions and version requirements read and compared the way Rust's
 * semver crate does, since Attune's runtime version matching is built on it:
 * strict MAJOR.MINOR.PATCH[-PRE][+BUILD] versions, and comma-separated
 * comparators (=, >, >=, <, <=, ~, ^, wildcards) that must all hold. */
#ifndef ATTUNE_RUNTIME_SEMVER_H
#define ATTUNE_RUNTIME_SEMVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longer pre-release tags are refused: interpreter versions never get near. */
#define SEMVER_PRE_MAX 64
/* The crate's own limit of comparators in one requirement. */
#define SEMVER_REQ_MAX 32

struct semver {
    uint64_t major, minor, patch;
    char pre[SEMVER_PRE_MAX]; /* "" when none */
};

enum semver_op {
    SEMVER_EXACT,
    SEMVER_GREATER,
    SEMVER_GREATER_EQ,
    SEMVER_LESS,
    SEMVER_LESS_EQ,
    SEMVER_TILDE,
    SEMVER_CARET,
    SEMVER_WILDCARD,
};

struct semver_comparator {
    enum semver_op op;
    uint64_t major, minor, patch;
    bool has_minor, has_patch; /* a partial version ("3", "3.12") leaves them out */
    char pre[SEMVER_PRE_MAX];
};

/* No comparators: the requirement "*", which every release matches. */
struct semver_req {
    size_t count;
    struct semver_comparator cmp[SEMVER_REQ_MAX];
};

/* Parses the whole of text as a strict version; 0 or -EINVAL. */
int semver_parse(const char *text, struct semver *out);

/* <0, 0 or >0 as a orders before, with or after b (a release after its
 * pre-releases); build metadata is not compared. */
int semver_compare(const struct semver *a, const struct semver *b);

/* Parses a requirement such as ">=3.12.0, <4.0.0" or "~3.11.*"; 0 or -EINVAL. */
int semver_req_parse(const char *text, struct semver_req *out);

/* True when v satisfies every comparator; a pre-release only matches when a
 * comparator names the same MAJOR.MINOR.PATCH with a pre-release of its own. */
bool semver_req_matches(const struct semver_req *req, const struct semver *v);

#endif
