/* The one event loop of a program (see loop.h). */
#include "core/loop.h"

#include <signal.h>

int event_loop_new(sd_event **out, sd_event_signal_handler_t on_stop, void *userdata)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = sd_event_new(out);
    if (rc >= 0)
        rc = sd_event_add_signal(*out, NULL, SIGTERM, on_stop, userdata);
    if (rc >= 0)
        rc = sd_event_add_signal(*out, NULL, SIGINT, on_stop, userdata);
    return rc < 0 ? rc : 0;
}
