/* What the worker sends a fork server, and what it sends the child (see
 * fork_request.h): the request's header and descriptors, and the launch the
 * child reads first on its control socket. */
#include "exec/fork_request.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exec/sandbox_limits.h"
#include "exec/spawn.h"

#define FORK_REQUEST_FDS_MAX 6

/* The header: what the zygote needs to set up the child, nothing secret. */
static char *request_header(const struct fork_request *req, bool cgroup)
{
    json_t *rlimits = json_array();
    for (int i = 0; req->limits && i < req->limits->n_rlimits; i++) {
        const struct rlimit *l = &req->limits->rlimits[i].lim;
        /* Python spells RLIM_INFINITY -1. */
        json_array_append_new(
            rlimits, json_pack("[i,I,I]", req->limits->rlimits[i].resource,
                               l->rlim_cur == RLIM_INFINITY ? -1 : (json_int_t)l->rlim_cur,
                               l->rlim_max == RLIM_INFINITY ? -1 : (json_int_t)l->rlim_max));
    }
    json_t *head =
        json_pack("{s:I, s:I, s:b, s:b, s:b, s:o, s:I, s:b}", "uid", (json_int_t)req->uid, "gid",
                  (json_int_t)req->gid, "nnp", 1, "file", req->file_fd >= 0, "cgroup", cgroup,
                  "rlimits", rlimits, "worker", (json_int_t)getpid(), "spare", req->spare);
    char *text = json_dumps(head, JSON_COMPACT);
    json_decref(head);
    return text;
}

int fork_request_send(int sock, const struct fork_request *req)
{
    int fds[FORK_REQUEST_FDS_MAX];
    int n = 0;
    for (int i = 0; i < 4; i++)
        fds[n++] = req->fds[i];
    if (req->file_fd >= 0)
        fds[n++] = req->file_fd;
    bool cgroup = req->limits && req->limits->cgroup_procs_fd >= 0;
    if (cgroup)
        fds[n++] = req->limits->cgroup_procs_fd;
    char *head = request_header(req, cgroup);
    union {
        char buf[CMSG_SPACE(sizeof(int) * FORK_REQUEST_FDS_MAX)];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct iovec iov = {.iov_base = head, .iov_len = strlen(head)};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = u.buf,
                         .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
    ssize_t sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
    int rc = sent < 0 ? -errno : 0;
    free(head);
    return rc;
}

void fork_server_preamble(char *const *args, char *const *envp, const char *cwd, struct strbuf *out)
{
    struct strbuf body;
    strbuf_init(&body);
    size_t nargs = 0;
    for (char *const *a = args; *a; a++)
        nargs++;
    strbuf_append(&body, cwd, strlen(cwd) + 1);
    strbuf_printf(&body, "%zu", nargs);
    strbuf_putc(&body, '\0');
    for (char *const *a = args; *a; a++)
        strbuf_append(&body, *a, strlen(*a) + 1);
    for (char *const *e = envp; *e; e++)
        strbuf_append(&body, *e, strlen(*e) + 1);
    size_t len = body.len ? body.len - 1 : 0; /* no separator after the last field */
    const unsigned char size[4] = {(unsigned char)len, (unsigned char)(len >> 8),
                                   (unsigned char)(len >> 16), (unsigned char)(len >> 24)};
    strbuf_append(out, size, sizeof(size));
    strbuf_append(out, body.data, len);
    secure_zero(body.data, body.len); /* the environment holds the execution's API token */
    strbuf_free(&body);
}
