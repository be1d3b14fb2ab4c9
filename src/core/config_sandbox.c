/* The sandbox keys of the configuration: sandbox.mode, sandbox.uid_range and
 * the per-execution limits (memory_max, tasks_max, cpu_max), their parsing and
 * their checks (the sandbox itself is src/exec/sandbox.c, the limits
 * src/exec/sandbox_limits.c). */
#include <errno.h>
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* The limits */

/* Below this nothing starts (an interpreter alone maps more). */
#define MEMORY_MAX_MIN (INT64_C(16) << 20)
/* The kernel's own ceiling on pids (PID_MAX_LIMIT). */
#define TASKS_MAX_MAX INT64_C(4194304)
/* cpu.max takes a quota of at least 1 ms per 100 ms period: 0.01 CPU. */
#define CPU_MAX_MIN 10
#define CPU_MAX_MAX (1024 * 1000)

static bool is_unlimited(const char *text)
{
    return strcasecmp(text, "unlimited") == 0 || strcasecmp(text, "max") == 0;
}

/* "K", "M", "G", "T", each optionally followed by "B" or "iB"; "" or "B". */
static int size_shift(const char *suffix)
{
    static const char units[] = "KMGT";
    if (!*suffix || strcasecmp(suffix, "B") == 0)
        return 0;
    const char *u = strchr(units, toupper((unsigned char)suffix[0]));
    if (!u || !*u)
        return -1;
    const char *rest = suffix + 1;
    if (*rest && strcasecmp(rest, "B") != 0 && strcasecmp(rest, "iB") != 0)
        return -1;
    return 10 * (int)(u - units + 1);
}

bool config_parse_memory_max(const char *text, int64_t *bytes)
{
    if (!text)
        return false;
    if (is_unlimited(text)) {
        *bytes = 0;
        return true;
    }
    if (*text < '0' || *text > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    int shift = size_shift(end);
    if (errno || shift < 0 || v == 0 || v > (unsigned long long)(INT64_MAX >> shift))
        return false;
    *bytes = (int64_t)(v << shift);
    return true;
}

bool config_parse_tasks_max(const char *text, int64_t *tasks)
{
    if (!text)
        return false;
    if (is_unlimited(text)) {
        *tasks = 0;
        return true;
    }
    int64_t v;
    if (*text < '0' || *text > '9' || !parse_int64(text, &v) || v < 1)
        return false;
    *tasks = v;
    return true;
}

/* "0.5", "2" (CPUs) or "50%" (of one CPU), in thousandths of one CPU; the
 * YAML loader hands a float over as "%.17g", hence the rounding. */
bool config_parse_cpu_max(const char *text, int *permille)
{
    if (!text)
        return false;
    if (is_unlimited(text)) {
        *permille = 0;
        return true;
    }
    if ((*text < '0' || *text > '9') && *text != '.')
        return false;
    errno = 0;
    char *end;
    double v = strtod(text, &end);
    if (*end == '%') {
        v /= 100.0;
        end++;
    }
    /* Decimal only: strtod would also take hexadecimal. */
    if (strpbrk(text, "xX") || errno || *end || !isfinite(v) || v <= 0 || v > CPU_MAX_MAX / 1000.0)
        return false;
    long pm = (long)(v * 1000.0 + 0.5); /* no libm for lround */
    if (pm < 1)
        return false;
    *permille = (int)pm;
    return true;
}

void config_sandbox_limits(const struct config *cfg, struct config_limits *out)
{
    memset(out, 0, sizeof(*out));
    if (!config_parse_memory_max(cfg->sandbox_memory_max, &out->memory_max))
        out->memory_max = 0;
    if (!config_parse_tasks_max(cfg->sandbox_tasks_max, &out->tasks_max))
        out->tasks_max = 0;
    if (!config_parse_cpu_max(cfg->sandbox_cpu_max, &out->cpu_max_permille))
        out->cpu_max_permille = 0;
}

static const char *shown(const char *text)
{
    return text ? text : "";
}

int config_check_memory_max(const struct config *cfg, const struct key_def *def, char *err,
                            size_t errlen)
{
    int64_t v;
    if (!config_parse_memory_max(cfg->sandbox_memory_max, &v))
        return set_error(err, errlen, EINVAL,
                         "%s: expected unlimited or a size such as 256M or 2G (K, M, G, T: "
                         "powers of 1024; got \"%.*s\")",
                         def->name, ECHO_MAX, shown(cfg->sandbox_memory_max));
    if (v != 0 && v < MEMORY_MAX_MIN)
        return set_error(err, errlen, EINVAL, "%s: must be at least 16M (got \"%.*s\")", def->name,
                         ECHO_MAX, shown(cfg->sandbox_memory_max));
    return 0;
}

int config_check_tasks_max(const struct config *cfg, const struct key_def *def, char *err,
                           size_t errlen)
{
    int64_t v;
    if (!config_parse_tasks_max(cfg->sandbox_tasks_max, &v) || v > TASKS_MAX_MAX)
        return set_error(err, errlen, EINVAL,
                         "%s: expected unlimited or a number of processes and threads from 1 to "
                         "%" PRId64 " (got \"%.*s\")",
                         def->name, TASKS_MAX_MAX, ECHO_MAX, shown(cfg->sandbox_tasks_max));
    return 0;
}

int config_check_cpu_max(const struct config *cfg, const struct key_def *def, char *err,
                         size_t errlen)
{
    int v;
    if (!config_parse_cpu_max(cfg->sandbox_cpu_max, &v) || (v != 0 && v < CPU_MAX_MIN))
        return set_error(err, errlen, EINVAL,
                         "%s: expected unlimited, a number of CPUs from 0.01 to %d (0.5: half "
                         "of one CPU) or a percentage of one CPU (50%%) (got \"%.*s\")",
                         def->name, CPU_MAX_MAX / 1000, ECHO_MAX, shown(cfg->sandbox_cpu_max));
    return 0;
}
