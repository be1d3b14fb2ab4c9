/* The sandbox keys of the configuration: sandbox.mode and sandbox.uid_range,
 * their parsing and their checks (the sandbox itself is src/exec/sandbox.c). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/config_table.h"
#include "core/util.h"

static const char *const mode_names[] = {
    [SANDBOX_MODE_NONE] = "none",
    [SANDBOX_MODE_AUTO] = "auto",
    [SANDBOX_MODE_UID] = "uid",
    [SANDBOX_MODE_USERNS] = "userns",
};

static int mode_from_name(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(mode_names); i++)
        if (name && strcmp(name, mode_names[i]) == 0)
            return (int)i;
    return -1;
}

enum sandbox_mode config_sandbox_mode(const struct config *cfg)
{
    int mode = mode_from_name(cfg->sandbox_mode);
    return mode < 0 ? SANDBOX_MODE_NONE : (enum sandbox_mode)mode;
}

/* A decimal uid, digits only (no sign, no spaces); *end is where it stops. */
static bool parse_uid(const char *s, const char **end, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    char *e;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno || v > UINT32_MAX)
        return false;
    *out = v;
    *end = e;
    return true;
}

bool config_parse_uid_range(const char *text, uint32_t *first, uint32_t *count)
{
    uint64_t a, b;
    const char *p;
    if (!text || !parse_uid(text, &p, &a) || (*p != '-' && *p != '+'))
        return false;
    char sep = *p++;
    const char *end;
    if (!parse_uid(p, &end, &b) || *end)
        return false;
    uint64_t n = sep == '-' ? (b >= a ? b - a + 1 : 0) : b;
    /* uid 0 is root's and (uid_t)-1 means "unchanged" to setresuid. */
    if (a == 0 || n == 0 || a + n - 1 >= UINT32_MAX)
        return false;
    *first = (uint32_t)a;
    *count = (uint32_t)n;
    return true;
}

int config_check_sandbox_mode(const struct config *cfg, const struct key_def *def, char *err,
                              size_t errlen)
{
    if (mode_from_name(cfg->sandbox_mode) < 0)
        return set_error(err, errlen, EINVAL,
                         "%s: must be one of auto, uid, userns, none (got \"%.*s\")", def->name,
                         ECHO_MAX, cfg->sandbox_mode ? cfg->sandbox_mode : "");
    return 0;
}

int config_check_uid_range(const struct config *cfg, const struct key_def *def, char *err,
                           size_t errlen)
{
    uint32_t first, count;
    if (!config_parse_uid_range(cfg->sandbox_uid_range, &first, &count))
        return set_error(err, errlen, EINVAL,
                         "%s: expected FIRST-LAST or FIRST+COUNT, uids from 1 to 4294967294 "
                         "(got \"%.*s\")",
                         def->name, ECHO_MAX, cfg->sandbox_uid_range ? cfg->sandbox_uid_range : "");
    /* Each running execution holds one uid of the range. */
    if (count < (uint32_t)cfg->max_concurrent_tasks)
        return set_error(err, errlen, EINVAL,
                         "%s: holds %" PRIu32 " uids, fewer than worker.max_concurrent_tasks (%d)",
                         def->name, count, cfg->max_concurrent_tasks);
    return 0;
}
