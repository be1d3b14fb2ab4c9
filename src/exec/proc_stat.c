/* Reading /proc/PID/stat (see proc_stat.h). */
#include "exec/proc_stat.h"

#include <stdio.h>
#include <string.h>

bool proc_stat_read(pid_t pid, char *state, pid_t *ppid)
{
    char path[64], buf[512];
    int parent;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    /* The command name, in parentheses, may hold spaces and parentheses. */
    char *end = strrchr(buf, ')');
    if (!end || sscanf(end + 1, " %c %d", state, &parent) != 2)
        return false;
    *ppid = (pid_t)parent;
    return true;
}
