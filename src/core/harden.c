/* Process hardening for the programs that hold secrets (see harden.h). */
#include "core/harden.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

int harden_process(const char *program)
{
    int rc = 0;
    const struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) < 0) {
        rc = -errno;
        fprintf(stderr, "%s: warning: cannot disable core dumps: %s\n", program, strerror(errno));
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
        rc = rc ? rc : -errno;
        fprintf(stderr, "%s: warning: cannot make the process non-dumpable: %s\n", program,
                strerror(errno));
    }
    return rc;
}
