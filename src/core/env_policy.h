/* The environment variables an action is never given from execution.env_vars
 * or worker.env: those that make the shell, the dynamic loader or an
 * interpreter run code of the setter's choosing before or beside the action
 * (docs/actions.md, "Variables that are never passed"). */
#ifndef ATTUNE_CORE_ENV_POLICY_H
#define ATTUNE_CORE_ENV_POLICY_H

/* Why NAME may not be set, in a few words ("bash runs the file it names");
 * NULL when it may (a few PYTHON* variables that change no code path, such
 * as PYTHONUNBUFFERED, may). Names are matched exactly, case included, as the
 * programs that read them do. */
const char *env_policy_denied(const char *name);

#endif
