/* The result of an execution that ran, and of one that never started (see
 * result.h and executor.h). */
#include "executor/result.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "core/yaml.h"

/* Attune gives stderr whole up to this many lines, else its last line. */
#define RESULT_ERROR_LINES 5
#define BLANKS " \t\n\v\f\r"

/* Output parsing, as Attune does it: only output that is not blank, and
 * never a value PostgreSQL's jsonb would refuse (\u0000, so no
 * JSON_ALLOW_NUL). */

static json_t *parse_json_text(const char *text, size_t len)
{
    return json_loadb(text, len, JSON_DECODE_ANY, NULL);
}

/* One line of text at pos: its length without "\n" or "\r\n"; *next is past
 * its end. */
static size_t next_line(const char *text, size_t len, size_t pos, size_t *next)
{
    const char *nl = memchr(text + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - text) : len;
    *next = nl ? end + 1 : len;
    if (nl && end > pos && text[end - 1] == '\r')
        end--;
    return end - pos;
}

static json_t *parse_last_line(const char *text, size_t len)
{
    size_t start = len;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    return parse_json_text(text + start, len - start);
}

/* Each line that parses is an element; lines that do not are skipped. */
static json_t *parse_json_lines(const char *text, size_t len)
{
    json_t *arr = json_array();
    for (size_t pos = 0, next; pos < len; pos = next) {
        size_t line_len = next_line(text, len, pos, &next);
        json_t *v = line_len ? parse_json_text(text + pos, line_len) : NULL;
        if (v)
            json_array_append_new(arr, v);
    }
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

json_t *execution_parse_output(const char *text, size_t len, enum output_format format)
{
    json_t *v = NULL;
    char err[256];
    str_trim(&text, &len);
    if (len == 0)
        return NULL;
    switch (format) {
    case OUTPUT_FORMAT_JSON:
        v = parse_json_text(text, len);
        return v ? v : parse_last_line(text, len);
    case OUTPUT_FORMAT_YAML:
        return yaml_parse(text, len, &v, err, sizeof(err)) == 0 ? v : NULL;
    case OUTPUT_FORMAT_JSONL:
        return parse_json_lines(text, len);
    default:
        return NULL;
    }
}

/* An execution that never started */

json_t *execution_failure_result(const char *error)
{
    /* Attune leaves out an empty stdout. */
    return json_pack("{s:b, s:n, s:i, s:s, s:s, s:b, s:b, s:i, s:i}", "succeeded", 0, "exit_code",
                     "duration_ms", 0, "stderr", "", "error", error, "stdout_truncated", 0,
                     "stderr_truncated", 0, "stdout_bytes_truncated", 0, "stderr_bytes_truncated",
                     0);
}

/* An execution that ran */

json_t *execution_reply_parse(launch_decode_fn decode, const struct proc_result *pr)
{
    char err[256] = "the wrapper's answer is not an object";
    if (!decode || pr->reply.len == 0 || pr->reply_truncated)
        return NULL;
    json_t *reply = decode(pr->reply.data, pr->reply.len, err, sizeof(err));
    if (!json_is_object(reply)) {
        json_decref(reply);
        return json_pack("{s:s}", "error", err);
    }
    return reply;
}

enum execution_status execution_result_status(const struct proc_result *pr, const json_t *reply)
{
    if (pr->cancelled)
        return EXECUTION_CANCELLED;
    if (pr->timed_out)
        return EXECUTION_TIMEOUT;
    if (pr->exited && pr->exit_code == 0 && !json_object_get(reply, "error") &&
        !pr->reply_truncated)
        return EXECUTION_COMPLETED;
    return EXECUTION_FAILED;
}

/* Lines as Rust's str::lines counts them: a final line ending adds none. */
static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; (p = strchr(p, '\n')); p++)
        n++;
    size_t len = strlen(text);
    return len > 0 && text[len - 1] != '\n' ? n + 1 : n;
}

char *execution_exit_error(const char *stderr_text, int exit_code)
{
    if (!*stderr_text)
        return xasprintf("Command exited with code %d", exit_code);
    if (count_lines(stderr_text) <= RESULT_ERROR_LINES)
        return xstrdup(stderr_text);
    size_t len = strlen(stderr_text), end = len, start;
    if (stderr_text[end - 1] == '\n') {
        end--;
        if (end > 0 && stderr_text[end - 1] == '\r')
            end--;
    }
    for (start = end; start > 0 && stderr_text[start - 1] != '\n'; start--)
        ;
    return xstrndup(stderr_text + start, end - start);
}

/* Attune's exit code: -1 when there is none (killed by a signal), and
 * always -1 after a timeout. */
static int result_exit_code(const struct proc_result *pr, enum execution_status status)
{
    return pr->exited && status != EXECUTION_TIMEOUT ? pr->exit_code : -1;
}

static char *result_error(const struct result_input *in, enum execution_status status)
{
    const char *wrapper_error = json_string_value(json_object_get(in->reply, "error"));
    switch (status) {
    case EXECUTION_TIMEOUT:
        return xasprintf("Execution timed out after %d seconds", in->timeout_seconds);
    case EXECUTION_CANCELLED:
        return xstrdup("Execution cancelled by user");
    case EXECUTION_COMPLETED:
        return NULL;
    default:
        break;
    }
    if (wrapper_error)
        return xstrdup(wrapper_error);
    if (in->proc->reply_truncated)
        return xasprintf("the return value is larger than %u MiB", EXECUTION_REPLY_MAX >> 20);
    return execution_exit_error(in->stderr_text, result_exit_code(in->proc, status));
}

/* The wrapper's value, else stdout parsed (which then says *from_stdout). */
static json_t *result_data(const struct result_input *in, enum execution_status status,
                           bool *from_stdout)
{
    json_t *data = json_object_get(in->reply, "data");
    *from_stdout = false;
    if (data)
        return json_incref(data);
    if (status != EXECUTION_COMPLETED || in->output_format == OUTPUT_FORMAT_TEXT)
        return NULL;
    const char *text = in->stdout_parse_text ? in->stdout_parse_text : in->stdout_text;
    data = execution_parse_output(text, strlen(text), in->output_format);
    if (data)
        *from_stdout = true;
    else if (strspn(in->stdout_text, BLANKS) < strlen(in->stdout_text))
        log_warn("output of %s is not valid %s; no data recorded", in->dir,
                 output_format_name(in->output_format));
    return data;
}

static void result_set_data(json_t *r, json_t *data)
{
    json_object_set_new(r, "data", data);
    /* Attune lifts the queue's acknowledgement out of the data. */
    json_t *queue_ack = json_object_get(data, "queue_ack");
    if (json_is_object(data) && queue_ack)
        json_object_set(r, "queue_ack", queue_ack);
}

json_t *execution_result_new(const struct result_input *in, enum execution_status status)
{
    const struct proc_result *pr = in->proc;
    json_t *r = json_object();
    json_object_set_new(r, "succeeded", json_boolean(status == EXECUTION_COMPLETED));
    if (status == EXECUTION_CANCELLED)
        json_object_set_new(r, "cancelled", json_true());
    if (status == EXECUTION_TIMEOUT)
        json_object_set_new(r, "timed_out", json_true());
    json_object_set_new(r, "exit_code", json_integer(result_exit_code(pr, status)));
    if (!pr->exited)
        json_object_set_new(r, "signal", json_integer(pr->signal));
    json_object_set_new(r, "duration_ms", json_integer((json_int_t)pr->duration_ms));
    bool parsed;
    json_t *data = result_data(in, status, &parsed);
    if (data)
        result_set_data(r, data);
    char *error = result_error(in, status);
    if (error)
        json_object_set_new(r, "error", json_string(error));
    free(error);
    /* Stdout parsed into data is not repeated; an empty one is left out. */
    if (!parsed && in->stdout_text[0])
        json_object_set_new(r, "stdout", json_string(in->stdout_text));
    json_object_set_new(r, "stderr", json_string(in->stderr_text));
    if (strspn(in->stderr_text, BLANKS) < strlen(in->stderr_text))
        json_object_set_new(r, "stderr_log", json_sprintf("%s/stderr.log", in->dir));
    json_object_set_new(r, "stdout_truncated", json_boolean(in->stdout_truncated));
    json_object_set_new(r, "stderr_truncated", json_boolean(in->stderr_truncated));
    json_object_set_new(r, "stdout_bytes_truncated", json_integer(in->stdout_dropped));
    json_object_set_new(r, "stderr_bytes_truncated", json_integer(in->stderr_dropped));
    if (in->logs_incomplete)
        json_object_set_new(r, "logs_incomplete", json_true());
    json_object_set_new(r, "artifacts_dir", json_string(in->dir));
    return r;
}
