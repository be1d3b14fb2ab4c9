/* Asking an interpreter its version (`python3 --version`, `node --version`)
 * once at start, for the worker's capabilities: a short-lived child with a
 * bounded wait, killed if it does not answer in time. */
#ifndef ATTUNE_RUNTIME_PROBE_H
#define ATTUNE_RUNTIME_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A `--version` child started and not yet read. */
struct probe {
    pid_t pid; /* 0: none */
    int fd;    /* what it prints */
};

/* Runs `interpreter --version` (an absolute path) and writes the first
 * dotted number it prints ("Python 3.11.2" gives 3.11.2, "v20.11.0" gives
 * 20.11.0) to out. Returns 0, or a negative errno: the program could not
 * start, failed, printed no version or took longer than timeout_ms. */
int probe_version(const char *interpreter, int timeout_ms, char *out, size_t outlen);

/* probe_version in two halves, so that several interpreters answer at once:
 * probe_start spawns the child; probe_finish waits at most timeout_ms for its
 * answer, reaps it and releases the probe whatever happens. */
int probe_start(const char *interpreter, struct probe *probe);
int probe_finish(struct probe *probe, int timeout_ms, char *out, size_t outlen);

/* The first dotted number in text ("3.11.2", "20"), copied to out; false
 * when there is none or it does not fit. */
bool probe_find_version(const char *text, char *out, size_t outlen);

#endif
