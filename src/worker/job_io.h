/* The real ports of a job (see job.h): the database table modules, the
 * broker and the executor, each answer turned into one job event. */
#ifndef ATTUNE_WORKER_JOB_IO_H
#define ATTUNE_WORKER_JOB_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "db/db.h"
#include "executor/executor.h"
#include "mq/mq.h"
#include "worker/job.h"
#include "worker/log_rows.h"

struct job_io {
    sd_event *loop;
    struct db *db;
    struct mq *mq;
    const struct executor_settings *settings;
    struct log_rows *log_rows; /* NULL: no log rows (artifacts.log_rows off) */
    /* The owner of the jobs (the service) answers these two. */
    bool (*held_here)(int64_t execution_id, void *owner);
    void (*done)(struct job *job, void *owner);
    void *owner;
};

extern const struct job_ports job_io_ports;

#endif
