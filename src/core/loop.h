/* The one event loop of a program: SIGCHLD, SIGTERM and SIGINT blocked so
 * that they arrive as loop events, SIGPIPE ignored (a closed pipe is an error
 * return, not a death), and one handler for both stop signals. */
#ifndef ATTUNE_CORE_LOOP_H
#define ATTUNE_CORE_LOOP_H

#include <systemd/sd-event.h>

/* Returns 0 or a negative errno; *out is the new loop. */
int event_loop_new(sd_event **out, sd_event_signal_handler_t on_stop, void *userdata);

#endif
