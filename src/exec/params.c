/* Action parameters: typed NAME=VALUE assignment, validation against the
 * normalised schema, and serialisation as json, yaml, dotenv and PARAM_ vars. */
#include "exec/params.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/json.h"
#include "core/yaml.h"

static const json_t *schema_property(const json_t *schema, const char *name)
{
    return json_object_get(json_object_get(schema, "properties"), name);
}

static const char *property_type(const json_t *schema, const char *name)
{
    return json_string_value(json_object_get(schema_property(schema, name), "type"));
}

/* Assignment */

static json_t *parse_integer_text(const char *s)
{
    int64_t v;
    /* parse_int64 (strtoll) would accept leading blanks; a value must be whole. */
    if (!(s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')) || !parse_int64(s, &v))
        return NULL;
    return json_integer(v);
}

static json_t *parse_number_text(const char *s)
{
    json_t *i = parse_integer_text(s);
    if (i)
        return i;
    /* Only decimal notation: strtod also takes hex, inf and nan. */
    if (!*s || s[strspn(s, "0123456789.eE+-")] != '\0')
        return NULL;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (*end != '\0' || errno || !isfinite(d))
        return NULL;
    return json_real(d);
}

static json_t *parse_boolean_text(const char *s)
{
    static const char *const trues[] = {"true", "yes", "1"};
    static const char *const falses[] = {"false", "no", "0"};
    for (size_t i = 0; i < ARRAY_SIZE(trues); i++) {
        if (strcasecmp(s, trues[i]) == 0)
            return json_true();
        if (strcasecmp(s, falses[i]) == 0)
            return json_false();
    }
    return NULL;
}

static int parse_json_text(const char *name, const char *type, const char *s, json_t **out,
                           char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &jerr);
    bool want_array = strcmp(type, "array") == 0;
    if (!v)
        return set_error(err, errlen, EINVAL, "parameter '%s' must be a JSON %s, got '%s': %s",
                         name, type, s, jerr.text);
    if (want_array ? !json_is_array(v) : !json_is_object(v)) {
        int rc = set_error(err, errlen, EINVAL, "parameter '%s' must be a JSON %s, got %s '%s'",
                           name, type, json_type_name(v), s);
        json_decref(v);
        return rc;
    }
    *out = v;
    return 0;
}

/* Converts text to the parameter's declared type; untyped means string. */
static int convert_value(const char *name, const char *type, const char *s, json_t **out, char *err,
                         size_t errlen)
{
    *out = NULL;
    if (!type || strcmp(type, "string") == 0) {
        *out = json_string(s);
        if (!*out)
            return set_error(err, errlen, EINVAL, "parameter '%s' is not valid UTF-8", name);
        return 0;
    }
    if (strcmp(type, "array") == 0 || strcmp(type, "object") == 0)
        return parse_json_text(name, type, s, out, err, errlen);
    if (strcmp(type, "integer") == 0 && !(*out = parse_integer_text(s)))
        return set_error(err, errlen, EINVAL, "parameter '%s' must be an integer, got '%s'", name,
                         s);
    if (strcmp(type, "number") == 0 && !(*out = parse_number_text(s)))
        return set_error(err, errlen, EINVAL, "parameter '%s' must be a number, got '%s'", name, s);
    if (strcmp(type, "boolean") == 0 && !(*out = parse_boolean_text(s)))
        return set_error(err, errlen, EINVAL,
                         "parameter '%s' must be a boolean (true/false, yes/no, 1/0), got '%s'",
                         name, s);
    if (!*out)
        *out = json_string(s);
    return 0;
}

int params_assign(json_t *params, const json_t *schema, const char *assignment, char *err,
                  size_t errlen)
{
    if (!json_is_object(params))
        return set_error(err, errlen, EINVAL, "parameters must be an object");
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return set_error(err, errlen, EINVAL, "-p expects NAME=VALUE, got '%s'", assignment);
    char *name = xstrndup(assignment, (size_t)(eq - assignment));
    json_t *value;
    int rc = convert_value(name, property_type(schema, name), eq + 1, &value, err, errlen);
    if (rc == 0 && json_object_set_new(params, name, value) < 0)
        rc = set_error(err, errlen, EINVAL, "parameter name '%s' is not valid UTF-8", name);
    free(name);
    return rc;
}

/* --params-json: the text itself, @FILE or - */

static int read_params_source(const char *arg, struct strbuf *text, char *err, size_t errlen)
{
    bool from_stdin = strcmp(arg, "-") == 0;
    const char *what = from_stdin ? "standard input" : arg + 1;
    /* One byte over the cap tells a file that is too large from one that fits. */
    int rc = from_stdin ? read_fd(STDIN_FILENO, PARAMS_JSON_MAX + 1, text)
                        : read_file(arg + 1, PARAMS_JSON_MAX + 1, text);
    if (rc < 0)
        return set_error(err, errlen, rc, "--params-json: cannot read %s: %s", what, strerror(-rc));
    if (text->len > PARAMS_JSON_MAX)
        return set_error(err, errlen, EFBIG, "--params-json: %s is larger than %d MiB", what,
                         PARAMS_JSON_MAX >> 20);
    return 0;
}

int params_load_json_arg(const char *arg, json_t **out, char *err, size_t errlen)
{
    struct strbuf text;
    strbuf_init(&text);
    bool indirect = arg[0] == '@' || strcmp(arg, "-") == 0;
    int rc = indirect ? read_params_source(arg, &text, err, errlen) : 0;
    json_error_t jerr;
    *out = NULL;
    if (rc == 0)
        *out = indirect ? json_loadb(text.data, text.len, 0, &jerr) : json_loads(arg, 0, &jerr);
    if (rc == 0 && !json_is_object(*out)) {
        /* The parser's message quotes the text near the error: not for what
         * came from a file or standard input, which may hold secrets. */
        if (*out || !indirect)
            rc = set_error(err, errlen, EINVAL, "--params-json must be a JSON object%s%s",
                           *out ? "" : ": ", *out ? "" : jerr.text);
        else
            rc = set_error(err, errlen, EINVAL,
                           "--params-json must be a JSON object: not JSON at line %d, column %d",
                           jerr.line, jerr.column);
        json_decref(*out);
        *out = NULL;
    }
    if (text.data)
        secure_zero(text.data, text.cap);
    strbuf_free(&text);
    return rc;
}

/* Validation */

static bool type_matches(const char *type, const json_t *v)
{
    if (!type)
        return true;
    if (strcmp(type, "string") == 0)
        return json_is_string(v);
    if (strcmp(type, "integer") == 0)
        return json_is_integer(v);
    if (strcmp(type, "number") == 0)
        return json_is_number(v);
    if (strcmp(type, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(type, "array") == 0)
        return json_is_array(v);
    if (strcmp(type, "object") == 0)
        return json_is_object(v);
    return true;
}

static const char *with_article(const char *type)
{
    return strcmp(type, "integer") == 0 || strcmp(type, "array") == 0 || strcmp(type, "object") == 0
               ? "an"
               : "a";
}

static bool enum_contains(const json_t *en, const json_t *v)
{
    size_t i;
    const json_t *item;
    json_array_foreach(en, i, item)
    {
        if (json_equal(item, v))
            return true;
    }
    return false;
}

/* Strings as they are (quoted when quote is set), anything else as JSON. */
static void put_value_text(struct strbuf *sb, const json_t *v, bool quote)
{
    if (json_is_string(v)) {
        strbuf_printf(sb, quote ? "'%s'" : "%s", json_string_value(v));
        return;
    }
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    strbuf_puts(sb, text ? text : "?");
    free(text);
}

static int enum_error(const char *name, const json_t *en, const json_t *v, char *err, size_t errlen)
{
    struct strbuf sb;
    strbuf_init(&sb);
    size_t i;
    const json_t *item;
    json_array_foreach(en, i, item)
    {
        if (i)
            strbuf_puts(&sb, ", ");
        put_value_text(&sb, item, false);
    }
    strbuf_puts(&sb, "; got ");
    if (v)
        put_value_text(&sb, v, true);
    else
        strbuf_puts(&sb, "a value not shown (secret: true)");
    int rc = set_error(err, errlen, EINVAL, "parameter '%s' must be one of: %s", name, sb.data);
    strbuf_free(&sb);
    return rc;
}

static bool is_required(const json_t *schema, const char *name)
{
    return json_array_has_string(json_object_get(schema, "required"), name);
}

static int check_value(const char *name, const json_t *prop, bool required, const json_t *v,
                       char *err, size_t errlen)
{
    if (json_is_null(v)) {
        if (required)
            return set_error(err, errlen, EINVAL, "required parameter '%s' is null", name);
        return 0;
    }
    const char *type = json_string_value(json_object_get(prop, "type"));
    if (!type_matches(type, v))
        return set_error(err, errlen, EINVAL, "parameter '%s' must be %s %s, got %s", name,
                         with_article(type), type, json_type_name(v));
    const json_t *en = json_object_get(prop, "enum");
    if (json_is_array(en) && !enum_contains(en, v))
        return enum_error(name, en, json_is_true(json_object_get(prop, "secret")) ? NULL : v, err,
                          errlen);
    return 0;
}

static int validate_property(json_t *params, const json_t *schema, const char *name,
                             const json_t *prop, char *err, size_t errlen)
{
    bool required = is_required(schema, name);
    json_t *v = json_object_get(params, name);
    if (!v) {
        const json_t *def = json_object_get(prop, "default");
        if (def) {
            v = json_deep_copy(def);
            json_object_set_new(params, name, v);
        } else if (required) {
            return set_error(err, errlen, EINVAL, "missing required parameter '%s'", name);
        } else {
            return 0;
        }
    }
    return check_value(name, prop, required, v, err, errlen);
}

int params_validate(json_t *params, const json_t *schema, char *err, size_t errlen)
{
    if (!json_is_object(params))
        return set_error(err, errlen, EINVAL, "parameters must be an object, got %s",
                         params ? json_type_name(params) : "nothing");
    const char *name;
    const json_t *prop;
    json_object_foreach(json_object_get(schema, "properties"), name, prop)
    {
        int rc = validate_property(params, schema, name, prop, err, errlen);
        if (rc < 0)
            return rc;
    }
    /* Required names the properties do not describe still have to be there. */
    size_t i;
    const json_t *req;
    json_array_foreach(json_object_get(schema, "required"), i, req)
    {
        const char *n = json_string_value(req);
        if (n && !schema_property(schema, n) && !json_object_get(params, n))
            return set_error(err, errlen, EINVAL, "missing required parameter '%s'", n);
    }
    return 0;
}

/* Formats */

static void put_scalar_text(struct strbuf *out, const json_t *v)
{
    if (json_is_string(v)) {
        strbuf_puts(out, json_string_value(v));
    } else if (!json_is_null(v)) {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        strbuf_puts(out, text ? text : "");
        free(text);
    }
}

static void dotenv_line(struct strbuf *out, const char *key, const json_t *v)
{
    struct strbuf text;
    strbuf_init(&text);
    put_scalar_text(&text, v);
    params_dotenv_key(out, key);
    strbuf_putc(out, '=');
    strbuf_put_sh_quoted(out, text.data ? text.data : "");
    strbuf_putc(out, '\n');
    strbuf_free(&text);
}

static void dotenv_value(struct strbuf *out, const char *key, const json_t *v)
{
    /* An empty object would vanish when flattened; it is written as {}. */
    if (!json_is_object(v) || json_object_size(v) == 0) {
        dotenv_line(out, key, v);
        return;
    }
    const char *sub;
    const json_t *item;
    json_object_foreach((json_t *)v, sub, item)
    {
        char *joined = xasprintf("%s.%s", key, sub);
        dotenv_value(out, joined, item);
        free(joined);
    }
}

static void format_dotenv(const json_t *params, struct strbuf *out)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)params, key, v)
    {
        dotenv_value(out, key, v);
    }
}

void params_format(const json_t *params, enum param_format format, struct strbuf *out)
{
    json_t *empty = NULL;
    strbuf_append(out, "", 0); /* out is a string even when nothing follows */
    if (!params)
        params = empty = json_object();
    if (format == PARAM_FORMAT_YAML) {
        if (yaml_emit(params, out) < 0)
            strbuf_puts(out, "{}\n");
    } else if (format == PARAM_FORMAT_DOTENV) {
        format_dotenv(params, out);
    } else {
        char *text = json_dumps(params, JSON_COMPACT | JSON_ENCODE_ANY);
        strbuf_puts(out, text ? text : "{}");
        strbuf_putc(out, '\n');
        free(text);
    }
    json_decref(empty);
}

void params_to_env(const json_t *params, const json_t *schema, const json_t *hidden,
                   struct strv *env)
{
    const json_t *props = json_object_get(schema, "properties");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)params, key, v)
    {
        if (json_array_has_string(hidden, key) ||
            json_is_true(json_object_get(json_object_get(props, key), "secret")))
            continue;
        struct strbuf name, text;
        strbuf_init(&name);
        strbuf_init(&text);
        params_env_name(&name, key);
        put_scalar_text(&text, v);
        strv_setenv(env, name.data, text.data ? text.data : "");
        strbuf_free(&name);
        strbuf_free(&text);
    }
}
