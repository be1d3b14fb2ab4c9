/* libFuzzer target: envelope_parse_request on arbitrary message bodies (what
 * anyone who can publish to the worker's queue sends), and a rebuilt envelope
 * of every accepted request must parse back to the same request. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mq/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_envelope: %s: %s\n", what, detail);
    abort();
}

/* A rejection is one line of printable ASCII that goes into the log as is. */
static void check_reason(const char *err)
{
    if (!err[0])
        fail("rejected without a reason", "");
    for (const char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            fail("reason is not one printable line", err);
}

static void check_request(const struct execution_request_msg *m)
{
    if (strlen(m->message_id) != 36 || strlen(m->correlation_id) != 36)
        fail("accepted a message id that is not a UUID", m->message_id);
    if (m->execution_id <= 0 || m->worker_id < 0)
        fail("accepted an out-of-range id", m->message_id);
    if (!m->action_ref || !m->action_ref[0])
        fail("accepted an empty action_ref", m->message_id);
    if (m->config && !json_is_object(m->config))
        fail("config is neither an object nor NULL", m->message_id);
}

/* What the worker itself would send with the same fields parses back the same:
 * the builder and the parser agree on the contract. */
static void check_rebuilt(const struct execution_request_msg *m)
{
    json_t *payload =
        json_pack("{s:I, s:I, s:s, s:O?}", "execution_id", (json_int_t)m->execution_id, "worker_id",
                  (json_int_t)m->worker_id, "action_ref", m->action_ref, "config", m->config);
    if (!payload)
        fail("cannot rebuild the payload", m->action_ref);
    json_t *env =
        envelope_build("ExecutionScheduled", m->correlation_id, m->trace_id, payload, NULL);
    char *text = json_dumps(env, JSON_COMPACT);
    json_decref(env);
    if (!text)
        fail("cannot serialise the rebuilt envelope", m->action_ref);
    struct execution_request_msg back;
    char err[256] = "";
    if (envelope_parse_request(text, strlen(text), &back, err, sizeof(err)) != 0)
        fail("rebuilt envelope rejected", err);
    if (strcmp(back.correlation_id, m->correlation_id) != 0 ||
        strcmp(back.trace_id, m->trace_id) != 0 || back.execution_id != m->execution_id ||
        back.worker_id != m->worker_id || strcmp(back.action_ref, m->action_ref) != 0 ||
        !(back.config ? m->config && json_equal(back.config, m->config) : !m->config))
        fail("rebuilt envelope parses to another request", text);
    envelope_request_free(&back);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct execution_request_msg msg;
    char err[256] = "";
    int rc = envelope_parse_request(data, size, &msg, err, sizeof(err));
    if (rc == 0) {
        check_request(&msg);
        check_rebuilt(&msg);
    } else {
        if (rc != -EINVAL)
            fail("unexpected return code", err);
        check_reason(err);
        if (msg.action_ref || msg.config)
            fail("a rejected request still holds memory", err);
    }
    envelope_request_free(&msg);
    return 0;
}
