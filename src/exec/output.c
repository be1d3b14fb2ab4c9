/* Output capture into capped artifact log files. */
#include "exec/output.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "exec/mask.h"

int output_sink_open_fd(struct output_sink *sink, int fd, int64_t cap)
{
    sink->fd = fd;
    sink->cap = cap;
    sink->kept = 0;
    sink->dropped = 0;
    sink->write_error = 0;
    sink->md = NULL;
    sink->file_bytes = 0;
    sink->digested = false;
    sink->mask = NULL;
    return fd < 0 ? -EBADF : 0;
}

int output_sink_open(struct output_sink *sink, const char *path, int64_t cap)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    int rc = fd < 0 ? -errno : 0;
    (void)output_sink_open_fd(sink, fd, cap);
    /* An existing file keeps its mode through O_CREAT; logs are private. */
    if (rc == 0 && fchmod(fd, 0600) < 0)
        rc = -errno;
    return rc;
}

/* Writes to the file and, when asked, into the digest; a digest that
 * cannot follow the file is dropped. */
static int output_sink_put(struct output_sink *sink, const void *data, size_t len)
{
    int rc = write_all(sink->fd, data, len);
    if (rc == 0)
        sink->file_bytes += (int64_t)len;
    if (sink->md && (rc < 0 || EVP_DigestUpdate(sink->md, data, len) != 1)) {
        EVP_MD_CTX_free(sink->md);
        sink->md = NULL;
    }
    return rc;
}

/* Keeps what fits under the cap, counts the rest. */
static void output_sink_keep(void *userdata, const void *data, size_t len)
{
    struct output_sink *sink = userdata;
    int64_t room = sink->cap - sink->kept;
    size_t keep = room <= 0 ? 0 : ((int64_t)len < room ? len : (size_t)room);
    if (keep > 0 && sink->fd >= 0 && sink->write_error == 0)
        sink->write_error = output_sink_put(sink, data, keep);
    sink->kept += (int64_t)keep;
    sink->dropped += (int64_t)(len - keep);
}

void output_sink_mask(struct output_sink *sink, const struct mask_set *set, size_t keep_matches)
{
    if (!set || mask_set_count(set) == 0)
        return;
    sink->mask = mask_stream_new(set);
    mask_stream_keep_matches(sink->mask, keep_matches);
}

void output_sink_write(struct output_sink *sink, const void *data, size_t len)
{
    /* Past the cap nothing is kept: no need to find the secrets in it. */
    if (sink->mask && sink->kept < sink->cap)
        mask_stream_write(sink->mask, data, len, output_sink_keep, sink);
    else
        output_sink_keep(sink, data, len);
}

void output_sink_start_digest(struct output_sink *sink)
{
    sink->md = EVP_MD_CTX_new();
    if (!sink->md || EVP_DigestInit_ex(sink->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(sink->md);
        sink->md = NULL;
    }
}

static void output_sink_end_digest(struct output_sink *sink)
{
    if (!sink->md)
        return;
    unsigned int len = 0;
    sink->digested =
        EVP_DigestFinal_ex(sink->md, sink->sha256, &len) == 1 && len == sizeof(sink->sha256);
    EVP_MD_CTX_free(sink->md);
    sink->md = NULL;
}

void output_sink_close(struct output_sink *sink)
{
    if (sink->fd < 0)
        return;
    if (sink->mask)
        mask_stream_flush(sink->mask, output_sink_keep, sink);
    if (sink->dropped > 0 && sink->write_error == 0) {
        char notice[160];
        int n = snprintf(notice, sizeof(notice),
                         "\n[OUTPUT TRUNCATED: %" PRId64 " bytes over the limit of %" PRId64
                         " bytes were dropped]\n",
                         sink->dropped, sink->cap);
        (void)output_sink_put(sink, notice, (size_t)n);
    }
    output_sink_end_digest(sink);
    close(sink->fd);
    sink->fd = -1;
}

bool output_sink_truncated(const struct output_sink *sink)
{
    return sink->dropped > 0;
}

bool output_sink_digest(const struct output_sink *sink, int64_t *size, char hex[65])
{
    if (!sink->digested)
        return false;
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(sink->sha256); i++) {
        hex[2 * i] = digits[sink->sha256[i] >> 4];
        hex[2 * i + 1] = digits[sink->sha256[i] & 15];
    }
    hex[64] = '\0';
    *size = sink->file_bytes;
    return true;
}

bool output_sink_matches(const struct output_sink *sink, const struct mask_match **matches,
                         size_t *count)
{
    *matches = NULL;
    *count = 0;
    return sink->mask && mask_stream_matches(sink->mask, matches, count);
}

void output_sink_release(struct output_sink *sink)
{
    mask_stream_free(sink->mask);
    sink->mask = NULL;
}
