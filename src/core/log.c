/* Leveled logging to stderr, as plain text or one JSON object per line. */
#include "core/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static enum log_level current_level = LOG_LEVEL_INFO;
static enum log_format current_format = LOG_FORMAT_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_setup(enum log_level level, enum log_format format)
{
    current_level = level;
    current_format = format;
}

bool log_level_parse(const char *name, enum log_level *out)
{
    for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return true;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *out = LOG_LEVEL_WARN;
        return true;
    }
    return false;
}

bool log_format_parse(const char *name, enum log_format *out)
{
    if (strcasecmp(name, "text") == 0)
        *out = LOG_FORMAT_TEXT;
    else if (strcasecmp(name, "json") == 0)
        *out = LOG_FORMAT_JSON;
    else
        return false;
    return true;
}

const char *log_level_name(enum log_level level)
{
    return level_names[level];
}

bool log_enabled(enum log_level level)
{
    return level <= current_level;
}

static void log_write_json(const char *ts, enum log_level level, const char *func, const char *msg)
{
    struct strbuf clean;
    strbuf_init(&clean);
    utf8_sanitize(msg, strlen(msg), &clean);
    json_t *obj = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level", level_names[level], "func",
                            func, "msg", clean.data);
    char *line = json_dumps(obj, JSON_COMPACT);
    if (line)
        fprintf(stderr, "%s\n", line);
    free(line);
    json_decref(obj);
    strbuf_free(&clean);
}

void log_escape_text(const char *msg, struct strbuf *out)
{
    static const char hex[] = "0123456789abcdef";
    strbuf_append(out, "", 0);
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p >= 0x20 && *p != 0x7f) {
            strbuf_putc(out, (char)*p);
        } else if (*p == '\n' || *p == '\t' || *p == '\r') {
            strbuf_putc(out, '\\');
            strbuf_putc(out, *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r');
        } else {
            char esc[4] = {'\\', 'x', hex[*p >> 4], hex[*p & 0xf]};
            strbuf_append(out, esc, sizeof(esc));
        }
    }
}

/* A text line holds no control character, so that a value quoted in a
 * message (a parameter, a name from the database) cannot forge a line. */
static void log_write_text(const char *ts, enum log_level level, const char *func, const char *msg)
{
    struct strbuf clean;
    strbuf_init(&clean);
    log_escape_text(msg, &clean);
    if (current_level == LOG_LEVEL_DEBUG)
        fprintf(stderr, "%s %-5s %s: %s\n", ts, level_names[level], func, clean.data);
    else
        fprintf(stderr, "%s %-5s %s\n", ts, level_names[level], clean.data);
    strbuf_free(&clean);
}

void log_message(enum log_level level, const char *func, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char ts[48];
    time_rfc3339_now(ts, sizeof(ts));
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (current_format == LOG_FORMAT_JSON)
        log_write_json(ts, level, func, msg);
    else
        log_write_text(ts, level, func, msg);
}
