/* Conversion between YAML text and jansson values (libyaml document API for
 * reading, the event emitter for writing). */
#include "core/yaml.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define YAML_MAX_DEPTH 64
#define YAML_MAX_NODES 1000000

struct yaml_reader {
    yaml_document_t *doc;
    size_t nodes_left;
    char *err;
    size_t errlen;
};

static bool scalar_is(const char *v, const char *const *words)
{
    for (; *words; words++)
        if (strcmp(v, *words) == 0)
            return true;
    return false;
}

static json_t *yaml_plain_scalar(const char *v, size_t len)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    if (scalar_is(v, nulls))
        return json_null();
    if (scalar_is(v, trues))
        return json_true();
    if (scalar_is(v, falses))
        return json_false();
    int64_t i;
    if (parse_int64(v, &i) || (v[0] == '+' && v[1] >= '0' && v[1] <= '9' && parse_int64(v + 1, &i)))
        return json_integer(i);
    char *end;
    const char *digits = v + (v[0] == '-' || v[0] == '+');
    /* strtod also takes hex floats, which YAML does not. */
    bool decimal = !strpbrk(v, "xXpP");
    if (decimal && ((digits[0] >= '0' && digits[0] <= '9') || digits[0] == '.')) {
        double d = strtod(v, &end);
        if (*end == '\0' && isfinite(d))
            return json_real(d);
    }
    return json_stringn(v, len);
}

static json_t *yaml_node_to_json(struct yaml_reader *r, yaml_node_t *node, int depth);

/* Only plain scalars are typed: quoted, literal and folded ones are strings. */
static json_t *yaml_scalar_to_json(yaml_node_t *node)
{
    struct strbuf clean;
    strbuf_init(&clean);
    utf8_sanitize((const char *)node->data.scalar.value, node->data.scalar.length, &clean);
    json_t *out = node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
                      ? yaml_plain_scalar(clean.data, clean.len)
                      : json_stringn(clean.data, clean.len);
    strbuf_free(&clean);
    return out;
}

static json_t *yaml_mapping_to_json(struct yaml_reader *r, yaml_node_t *node, int depth)
{
    json_t *obj = json_object();
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *key = yaml_document_get_node(r->doc, p->key);
        yaml_node_t *val = yaml_document_get_node(r->doc, p->value);
        if (!key || key->type != YAML_SCALAR_NODE) {
            set_error(r->err, r->errlen, EINVAL, "line %zu: mapping keys must be plain values",
                      key ? key->start_mark.line + 1 : 0);
            json_decref(obj);
            return NULL;
        }
        json_t *v = yaml_node_to_json(r, val, depth + 1);
        if (!v) {
            json_decref(obj);
            return NULL;
        }
        struct strbuf k;
        strbuf_init(&k);
        utf8_sanitize((const char *)key->data.scalar.value, key->data.scalar.length, &k);
        json_object_set_new(obj, k.data, v);
        strbuf_free(&k);
    }
    return obj;
}

static json_t *yaml_sequence_to_json(struct yaml_reader *r, yaml_node_t *node, int depth)
{
    json_t *arr = json_array();
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
         it++) {
        json_t *v = yaml_node_to_json(r, yaml_document_get_node(r->doc, *it), depth + 1);
        if (!v) {
            json_decref(arr);
            return NULL;
        }
        json_array_append_new(arr, v);
    }
    return arr;
}

static json_t *yaml_node_to_json(struct yaml_reader *r, yaml_node_t *node, int depth)
{
    if (!node)
        return json_null();
    if (depth > YAML_MAX_DEPTH) {
        set_error(r->err, r->errlen, EINVAL, "line %zu: nested deeper than %d levels",
                  node->start_mark.line + 1, YAML_MAX_DEPTH);
        return NULL;
    }
    if (r->nodes_left-- == 0) {
        set_error(r->err, r->errlen, EINVAL, "document expands to more than %d values",
                  YAML_MAX_NODES);
        return NULL;
    }
    switch (node->type) {
    case YAML_SCALAR_NODE:
        return yaml_scalar_to_json(node);
    case YAML_MAPPING_NODE:
        return yaml_mapping_to_json(r, node, depth);
    case YAML_SEQUENCE_NODE:
        return yaml_sequence_to_json(r, node, depth);
    default:
        return json_null();
    }
}

/* Values the node expands to, aliases counted as often as they are used;
 * memoised per node so that an alias bomb is measured in linear time. */
static size_t yaml_expanded_size(yaml_document_t *doc, int index, size_t *memo, int depth)
{
    yaml_node_t *node = yaml_document_get_node(doc, index);
    if (!node || depth > YAML_MAX_DEPTH)
        return 1;
    if (memo[index])
        return memo[index];
    size_t total = 1;
    if (node->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
             p < node->data.mapping.pairs.top && total <= YAML_MAX_NODES; p++)
            total += yaml_expanded_size(doc, p->value, memo, depth + 1);
    } else if (node->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             it < node->data.sequence.items.top && total <= YAML_MAX_NODES; it++)
            total += yaml_expanded_size(doc, *it, memo, depth + 1);
    }
    memo[index] = total > YAML_MAX_NODES ? YAML_MAX_NODES + 1 : total;
    return memo[index];
}

static bool yaml_too_large(yaml_document_t *doc)
{
    size_t count = (size_t)(doc->nodes.top - doc->nodes.start);
    size_t *memo = xcalloc(count + 2, sizeof(size_t));
    bool too_large = count > 0 && yaml_expanded_size(doc, 1, memo, 0) > YAML_MAX_NODES;
    free(memo);
    return too_large;
}

int yaml_parse(const char *text, size_t len, json_t **out, char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    *out = NULL;
    if (!yaml_parser_initialize(&parser))
        return set_error(err, errlen, ENOMEM, "cannot initialise the YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        int rc = set_error(err, errlen, EINVAL, "line %zu column %zu: %s",
                           parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                           parser.problem ? parser.problem : "invalid YAML");
        yaml_parser_delete(&parser);
        return rc;
    }
    struct yaml_reader r = {
        .doc = &doc, .nodes_left = YAML_MAX_NODES, .err = err, .errlen = errlen};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    json_t *value = NULL;
    if (root && yaml_too_large(&doc))
        set_error(err, errlen, EINVAL, "document expands to more than %d values", YAML_MAX_NODES);
    else
        value = root ? yaml_node_to_json(&r, root, 0) : json_null();
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (!value)
        return -EINVAL;
    *out = value;
    return 0;
}

/* Emitter */

static int emit_string_writer(void *data, unsigned char *buffer, size_t size)
{
    strbuf_append(data, buffer, size);
    return 1;
}

/* True when a string can be written plain and still reads back as the same
 * string (so `name: Bob`, but `'123'`, `'true'` and `': x'` stay quoted). */
static bool yaml_plain_is_safe(const char *v, size_t len)
{
    if (len == 0 || len > 200 || strlen(v) != len || v[len - 1] == ' ')
        return false;
    if (!((v[0] >= 'A' && v[0] <= 'Z') || (v[0] >= 'a' && v[0] <= 'z') || v[0] == '_' ||
          v[0] == '/'))
        return false;
    if (strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./- ") != len)
        return false;
    /* YAML 1.1 readers (PyYAML among them) take these as booleans. */
    static const char *const yaml11_bools[] = {"y", "n", "yes", "no", "on", "off", NULL};
    for (const char *const *w = yaml11_bools; *w; w++)
        if (strcasecmp(v, *w) == 0)
            return false;
    json_t *typed = yaml_plain_scalar(v, len);
    bool is_string = json_is_string(typed);
    json_decref(typed);
    return is_string;
}

static int emit_scalar(yaml_emitter_t *em, const char *value, size_t len, bool is_string)
{
    yaml_event_t ev;
    /* Strings that would read back as another type are never emitted plain. */
    bool plain_ok = !is_string || yaml_plain_is_safe(value, len);
    yaml_scalar_event_initialize(&ev, NULL, (yaml_char_t *)YAML_STR_TAG, (yaml_char_t *)value,
                                 (int)len, plain_ok, is_string, YAML_ANY_SCALAR_STYLE);
    return yaml_emitter_emit(em, &ev) ? 0 : -EINVAL;
}

static int emit_value(yaml_emitter_t *em, const json_t *v);

static int emit_object(yaml_emitter_t *em, const json_t *v)
{
    yaml_event_t ev;
    yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
    if (!yaml_emitter_emit(em, &ev))
        return -EINVAL;
    const char *key;
    json_t *item;
    json_object_foreach((json_t *)v, key, item)
    {
        if (emit_scalar(em, key, strlen(key), true) < 0 || emit_value(em, item) < 0)
            return -EINVAL;
    }
    yaml_mapping_end_event_initialize(&ev);
    return yaml_emitter_emit(em, &ev) ? 0 : -EINVAL;
}

static int emit_array(yaml_emitter_t *em, const json_t *v)
{
    yaml_event_t ev;
    yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
    if (!yaml_emitter_emit(em, &ev))
        return -EINVAL;
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (emit_value(em, item) < 0)
            return -EINVAL;
    }
    yaml_sequence_end_event_initialize(&ev);
    return yaml_emitter_emit(em, &ev) ? 0 : -EINVAL;
}

static int emit_value(yaml_emitter_t *em, const json_t *v)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return emit_object(em, v);
    case JSON_ARRAY:
        return emit_array(em, v);
    case JSON_STRING:
        return emit_scalar(em, json_string_value(v), json_string_length(v), true);
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return emit_scalar(em, num, strlen(num), false);
    case JSON_REAL:
        snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        /* Keep it a float when read back: 100.0, not 100. */
        if (!strpbrk(num, ".en"))
            strcat(num, ".0");
        return emit_scalar(em, num, strlen(num), false);
    case JSON_TRUE:
        return emit_scalar(em, "true", 4, false);
    case JSON_FALSE:
        return emit_scalar(em, "false", 5, false);
    default:
        return emit_scalar(em, "null", 4, false);
    }
}

int yaml_load_file(const char *path, size_t max_bytes, json_t **out, char *err, size_t errlen)
{
    struct strbuf text;
    char msg[512];
    *out = NULL;
    strbuf_init(&text);
    /* One byte past the cap tells a file at the cap from a larger one. */
    int rc = read_file(path, max_bytes + 1, &text);
    if (rc < 0)
        set_error(err, errlen, rc, "%s: %s", path, strerror(-rc));
    else if (text.len > max_bytes)
        rc = set_error(err, errlen, EFBIG, "%s: larger than %zu bytes", path, max_bytes);
    else if ((rc = yaml_parse(text.data, text.len, out, msg, sizeof(msg))) < 0)
        set_error(err, errlen, rc, "%s: %s", path, msg);
    if (text.data)
        secure_zero(text.data, text.len);
    strbuf_free(&text);
    return rc;
}

int yaml_emit(const json_t *value, struct strbuf *out)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    int rc = -EINVAL;
    if (!yaml_emitter_initialize(&em))
        return -ENOMEM;
    yaml_emitter_set_output(&em, emit_string_writer, out);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    if (!yaml_emitter_emit(&em, &ev))
        goto done;
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    if (!yaml_emitter_emit(&em, &ev) || emit_value(&em, value) < 0)
        goto done;
    yaml_document_end_event_initialize(&ev, 1);
    if (!yaml_emitter_emit(&em, &ev))
        goto done;
    yaml_stream_end_event_initialize(&ev);
    if (!yaml_emitter_emit(&em, &ev))
        goto done;
    rc = 0;
done:
    yaml_emitter_delete(&em);
    return rc;
}
