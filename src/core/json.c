/* Names for the kind of a jansson value: one table, so that YAML-facing and
 * schema-facing messages never disagree on what a value was. */
#include "core/json.h"

#include <string.h>

#include "core/util.h"

struct json_kind_names {
    const char *phrase;
    const char *type_name;
};

static const struct json_kind_names *kind_names(const json_t *v)
{
    static const struct json_kind_names names[] = {
        [JSON_OBJECT] = {"a mapping", "object"}, [JSON_ARRAY] = {"a list", "array"},
        [JSON_STRING] = {"a string", "string"},  [JSON_INTEGER] = {"an integer", "integer"},
        [JSON_REAL] = {"a number", "number"},    [JSON_TRUE] = {"a boolean", "boolean"},
        [JSON_FALSE] = {"a boolean", "boolean"}, [JSON_NULL] = {"null", "null"},
    };
    size_t type = v ? (size_t)json_typeof(v) : (size_t)JSON_NULL;
    return type < ARRAY_SIZE(names) && names[type].phrase ? &names[type] : &names[JSON_NULL];
}

const char *json_kind(const json_t *v)
{
    return kind_names(v)->phrase;
}

const char *json_type_name(const json_t *v)
{
    return kind_names(v)->type_name;
}

bool json_array_has_string(const json_t *array, const char *s)
{
    size_t i;
    const json_t *v;
    json_array_foreach(array, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}
