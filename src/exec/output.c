/* Output capture into capped artifact log files. */
#include "exec/output.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"

int output_sink_open(struct output_sink *sink, const char *path, int64_t cap)
{
    sink->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    sink->cap = cap;
    sink->kept = 0;
    sink->dropped = 0;
    sink->write_error = 0;
    if (sink->fd < 0)
        return -errno;
    /* An existing file keeps its mode through O_CREAT; logs are private. */
    return fchmod(sink->fd, 0600) < 0 ? -errno : 0;
}

void output_sink_write(struct output_sink *sink, const void *data, size_t len)
{
    int64_t room = sink->cap - sink->kept;
    size_t keep = room <= 0 ? 0 : ((int64_t)len < room ? len : (size_t)room);
    if (keep > 0 && sink->fd >= 0 && sink->write_error == 0) {
        int rc = write_all(sink->fd, data, keep);
        if (rc < 0)
            sink->write_error = rc;
    }
    sink->kept += (int64_t)keep;
    sink->dropped += (int64_t)(len - keep);
}

void output_sink_close(struct output_sink *sink)
{
    if (sink->fd < 0)
        return;
    if (sink->dropped > 0 && sink->write_error == 0) {
        char notice[160];
        int n = snprintf(notice, sizeof(notice),
                         "\n[OUTPUT TRUNCATED: %" PRId64 " bytes over the limit of %" PRId64
                         " bytes were dropped]\n",
                         sink->dropped, sink->cap);
        (void)write_all(sink->fd, notice, (size_t)n);
    }
    close(sink->fd);
    sink->fd = -1;
}

bool output_sink_truncated(const struct output_sink *sink)
{
    return sink->dropped > 0;
}
