/* The fork server's wire format, inside src/exec/ (fork_server.c and
 * process.c): a request is one SOCK_SEQPACKET message of a JSON header (uid,
 * gid, limits, whether a file and a cgroup descriptor follow, whether the
 * child is a spare) with the child's descriptors attached; the zygote
 * answers with two 32-bit integers, the child's pid and an errno. */
#ifndef ATTUNE_EXEC_FORK_REQUEST_H
#define ATTUNE_EXEC_FORK_REQUEST_H

#include "exec/fork_server.h"

/* Sends req on sock. Returns 0 or a negative errno. */
int fork_request_send(int sock, const struct fork_request *req);

#endif
