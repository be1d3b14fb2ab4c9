/* The effective configuration printed as YAML with its secrets masked (the
 * encryption key, the JWT secret, passwords inside URLs). */
#include "core/config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config_table.h"
#include "core/util.h"
#include "core/yaml.h"

#define CONFIG_MASK "********"

static json_t *json_text(const char *s)
{
    struct strbuf clean;
    strbuf_init(&clean);
    utf8_sanitize(s, strlen(s), &clean);
    json_t *v = json_stringn(clean.data, clean.len);
    strbuf_free(&clean);
    return v;
}

/* Replaces the value of a "password=" query parameter (libpq accepts one). */
static void mask_query_password(const char *url, const char *from, struct strbuf *out)
{
    for (const char *p = from; *p;) {
        if (p > url && (p[-1] == '?' || p[-1] == '&') && strncasecmp(p, "password=", 9) == 0) {
            strbuf_puts(out, "password=" CONFIG_MASK);
            p += strcspn(p, "&");
            continue;
        }
        strbuf_putc(out, *p++);
    }
}

/* The password is taken to run from the first ':' after the scheme to the
 * last '@', so that an unescaped '/', '?' or '@' in it is still hidden; in
 * odd URLs this hides more than the password, never less. */
static char *url_masked(const char *url)
{
    struct strbuf out;
    strbuf_init(&out);
    const char *scheme_end = strstr(url, "://");
    const char *auth = scheme_end ? scheme_end + 3 : url;
    const char *at = strrchr(auth, '@');
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    const char *rest = url;
    if (colon) {
        strbuf_append(&out, url, (size_t)(colon + 1 - url));
        strbuf_puts(&out, CONFIG_MASK);
        rest = at;
    }
    mask_query_password(url, rest, &out);
    return strbuf_detach(&out, NULL);
}

static json_t *list_json(char *const *items)
{
    json_t *list = json_array();
    for (char *const *r = items; r && *r; r++)
        json_array_append_new(list, json_text(*r));
    return list;
}

static json_t *runtimes_json(char *const *runtimes)
{
    if (!runtimes)
        return json_string("all");
    json_t *list = json_array();
    for (char *const *r = runtimes; *r; r++)
        json_array_append_new(list, json_text(*r));
    return list;
}

static json_t *action_env_json(const struct config *cfg)
{
    json_t *map = json_object();
    for (size_t i = 0; i < cfg->n_action_env; i++) {
        struct strbuf name;
        strbuf_init(&name);
        utf8_sanitize(cfg->action_env[i].name, strlen(cfg->action_env[i].name), &name);
        json_object_set_new(map, name.data, json_text(cfg->action_env[i].value));
        strbuf_free(&name);
    }
    return map;
}

static json_t *key_json(const struct config *cfg, const struct key_def *def)
{
    const char *s = NULL;
    if (def->kind == KEY_STRING || def->kind == KEY_URL || def->kind == KEY_SECRET)
        s = *(char *const *)config_field_c(cfg, def);
    switch (def->kind) {
    case KEY_STRING:
        return json_text(s ? s : "");
    case KEY_URL: {
        char *masked = url_masked(s ? s : "");
        json_t *v = json_text(masked);
        free(masked);
        return v;
    }
    case KEY_SECRET:
        return json_string(s ? CONFIG_MASK : "(unset)");
    case KEY_INT:
        return json_integer(*(const int *)config_field_c(cfg, def));
    case KEY_BOOL:
        return json_boolean(*(const bool *)config_field_c(cfg, def));
    case KEY_SIZE:
        return json_integer(*(const int64_t *)config_field_c(cfg, def));
    case KEY_RUNTIMES:
        return runtimes_json(cfg->runtimes);
    case KEY_LIST:
        return list_json(*(char *const *const *)config_field_c(cfg, def));
    case KEY_ENV:
        return action_env_json(cfg);
    case KEY_LOG_LEVEL:
        return json_string(log_level_name(cfg->log_level));
    case KEY_LOG_FORMAT:
        return json_string(cfg->log_format == LOG_FORMAT_JSON ? "json" : "text");
    }
    return json_null();
}

/* Builds the same nesting as the file: "worker.name" under "worker". */
static void put_key(json_t *root, const char *name, json_t *value)
{
    const char *dot = strchr(name, '.');
    if (!dot) {
        json_object_set_new(root, name, value);
        return;
    }
    char *section = xstrndup(name, (size_t)(dot - name));
    json_t *obj = json_object_get(root, section);
    if (!obj) {
        obj = json_object();
        json_object_set_new(root, section, obj);
    }
    put_key(obj, dot + 1, value); /* runtimes.python.preload */
    free(section);
}

void config_print_masked(const struct config *cfg, FILE *out)
{
    if (cfg->source_path)
        fprintf(out, "# configuration file: %s\n", cfg->source_path);
    else
        fputs("# no configuration file was read (defaults and environment only)\n", out);
    json_t *root = json_object();
    for (size_t i = 0; i < config_n_keys; i++)
        put_key(root, config_keys[i].name, key_json(cfg, &config_keys[i]));
    struct strbuf yaml;
    strbuf_init(&yaml);
    if (yaml_emit(root, &yaml) == 0)
        fwrite(yaml.data, 1, yaml.len, out);
    strbuf_free(&yaml);
    json_decref(root);
}
