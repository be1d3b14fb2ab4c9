/* Spare interpreter processes (worker.spare_processes): for each runtime that
 * has them (shell, python, node), a few processes started ahead of demand in their
 * sandbox (a uid of their own in uid mode, the rlimits applied), with the
 * worker's base environment and no execution's data, each waiting on fd 3.
 * One execution takes one, which then never serves another; the pool refills
 * from a deferred event, off the execution's start. Service only. */
#ifndef ATTUNE_EXECUTOR_SPARES_H
#define ATTUNE_EXECUTOR_SPARES_H

#include <sys/types.h>
#include <systemd/sd-event.h>

#include "core/config.h"
#include "exec/action.h"
#include "exec/process.h"
#include "runtime/runtime.h"

struct executor_settings;
struct spare_pool;
struct spare;

/* NULL (no pool) when worker.spare_processes is 0, in userns mode, with a
 * cgroup per execution, or when no runtime of the registry has spares. The
 * first spares start once the loop runs; at the loop's exit they are killed
 * and their uids swept. s must outlive the pool (executor_settings_free frees
 * it). */
struct spare_pool *spare_pool_new(sd_event *loop, struct executor_settings *s,
                                  const struct config *cfg);
void spare_pool_free(struct spare_pool *pool);

/* A spare for an execution of action on rt, when one is ready and the
 * execution can run in it (no runtime definition, parameters on stdin or in
 * the environment); else NULL. NULL-safe. */
struct spare *spare_pool_take(struct spare_pool *pool, const struct runtime *rt,
                              const struct action *action);

/* An execution has ended: the pool refills (see on_refill). NULL-safe. */
void spare_pool_refill(struct spare_pool *pool);

/* Whether the pool keeps spares of rt. NULL-safe. */
bool spare_pool_serves(const struct spare_pool *pool, const struct runtime *rt);

/* The spare's uid (0 outside uid mode), which the caller's sandbox slot owns
 * from now on (sandbox_enter_on_uid). */
uid_t spare_hand_uid(struct spare *spare);

/* Gives the spare its execution: the control payload from rt's spare_control
 * (in->launch, in->envp and in->cwd; the spare's environment is filled here),
 * then proc_arm with spec. *spare is used up either way (NULL after); on
 * failure (an execution the spare cannot take, a spare that died) its
 * process is gone and the caller starts cold. */
int spare_start(struct spare **spare, struct spare_input *in, const struct proc_spec *spec,
                proc_done_fn done, void *userdata, struct proc **out, char *err, size_t errlen);

/* Kills an unused spare; its uid, unless handed, is swept and freed. NULL-safe. */
void spare_discard(struct spare *spare);

#endif
