/* Leveled logging to stderr, as plain text or one JSON object per line.
 * Callers never pass secret values; the logger does not inspect messages. */
#ifndef ATTUNE_CORE_LOG_H
#define ATTUNE_CORE_LOG_H

#include <stdbool.h>

struct strbuf;

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

void log_setup(enum log_level level, enum log_format format);
/* Parses "error", "warn", "info", "debug"; returns false if unknown. */
bool log_level_parse(const char *name, enum log_level *out);
bool log_format_parse(const char *name, enum log_format *out);
const char *log_level_name(enum log_level level);
bool log_enabled(enum log_level level);

/* Appends msg to out as the text format writes it: newline, tab and
 * carriage return as \n, \t and \r, every other byte below 0x20 and 0x7f
 * as \xNN, everything else as it is. */
void log_escape_text(const char *msg, struct strbuf *out);

void log_message(enum log_level level, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(...) log_message(LOG_LEVEL_ERROR, __func__, __VA_ARGS__)
#define log_warn(...) log_message(LOG_LEVEL_WARN, __func__, __VA_ARGS__)
#define log_info(...) log_message(LOG_LEVEL_INFO, __func__, __VA_ARGS__)
#define log_debug(...) log_message(LOG_LEVEL_DEBUG, __func__, __VA_ARGS__)

#endif
