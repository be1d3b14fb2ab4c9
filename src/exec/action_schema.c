/* The parameter schema of an action: the two forms an action file may use
 * (the map form and a JSON-schema object) normalised into one. */
#include "exec/action_schema.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "core/json.h"
#include "core/util.h"

static const char *const param_types[] = {"string",  "integer", "number",
                                          "boolean", "array",   "object"};

static bool param_type_known(const char *s)
{
    for (size_t i = 0; i < ARRAY_SIZE(param_types); i++)
        if (strcmp(param_types[i], s) == 0)
            return true;
    return false;
}

json_t *action_schema_empty(void)
{
    return json_pack("{s:s, s:{}, s:[]}", "type", "object", "properties", "required");
}

static int copy_property_type(const char *name, const json_t *src, json_t *dst, char *err,
                              size_t errlen)
{
    const json_t *type = json_object_get(src, "type");
    if (!type || json_is_null(type))
        return 0;
    if (!json_is_string(type))
        return set_error(err, errlen, EINVAL,
                         "parameter '%s': type must be one of string, integer, number, "
                         "boolean, array, object, got %s",
                         name, json_kind(type));
    if (!param_type_known(json_string_value(type)))
        return set_error(err, errlen, EINVAL, "parameter '%s': unknown type '%s'", name,
                         json_string_value(type));
    json_object_set(dst, "type", (json_t *)type);
    return 0;
}

static int copy_property_extras(const char *name, const json_t *src, json_t *dst, char *err,
                                size_t errlen)
{
    const json_t *desc = json_object_get(src, "description");
    const json_t *def = json_object_get(src, "default");
    const json_t *en = json_object_get(src, "enum");
    const json_t *secret = json_object_get(src, "secret");
    if (desc && !json_is_null(desc) && !json_is_string(desc))
        return set_error(err, errlen, EINVAL, "parameter '%s': description must be a string", name);
    if (en && !json_is_null(en) && !json_is_array(en))
        return set_error(err, errlen, EINVAL, "parameter '%s': enum must be a list, got %s", name,
                         json_kind(en));
    if (secret && !json_is_null(secret) && !json_is_boolean(secret))
        return set_error(err, errlen, EINVAL, "parameter '%s': secret must be true or false", name);
    if (json_is_string(desc))
        json_object_set(dst, "description", (json_t *)desc);
    if (def)
        json_object_set_new(dst, "default", json_deep_copy(def));
    if (json_is_array(en))
        json_object_set_new(dst, "enum", json_deep_copy(en));
    if (json_is_boolean(secret))
        json_object_set(dst, "secret", (json_t *)secret);
    return 0;
}

/* Copies the kept keys of one parameter's definition; *required is set from
 * its own `required: true`. */
static int normalise_property(const char *name, const json_t *src, json_t **out, bool *required,
                              char *err, size_t errlen)
{
    *out = NULL;
    *required = false;
    if (name[0] == '\0')
        return set_error(err, errlen, EINVAL, "a parameter has an empty name");
    if (json_is_null(src)) {
        *out = json_object();
        return 0;
    }
    if (!json_is_object(src))
        return set_error(err, errlen, EINVAL, "parameter '%s' must be a mapping, got %s", name,
                         json_kind(src));
    const json_t *req = json_object_get(src, "required");
    if (req && !json_is_null(req) && !json_is_boolean(req))
        return set_error(err, errlen, EINVAL, "parameter '%s': required must be true or false",
                         name);
    json_t *prop = json_object();
    int rc = copy_property_type(name, src, prop, err, errlen);
    if (rc == 0)
        rc = copy_property_extras(name, src, prop, err, errlen);
    if (rc < 0) {
        json_decref(prop);
        return rc;
    }
    *required = json_is_true(req);
    *out = prop;
    return 0;
}

/* A JSON-schema object is told from the map form by `properties` holding
 * only mappings; a map-form parameter named "properties" holds scalars. */
static bool is_json_schema_form(const json_t *parameters)
{
    const json_t *props = json_object_get(parameters, "properties");
    if (!json_is_object(props))
        return false;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)props, key, v)
    {
        if (!json_is_object(v))
            return false;
    }
    return true;
}

/* The required list follows property order so that both forms of the same
 * schema normalise to equal values; names not among the properties follow. */
static json_t *build_required(const json_t *props, const json_t *flagged, const json_t *listed)
{
    json_t *req = json_array();
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)props, key, v)
    {
        if (json_array_has_string(flagged, key) || json_array_has_string(listed, key))
            json_array_append_new(req, json_string(key));
    }
    size_t i;
    json_array_foreach(listed, i, v)
    {
        const char *name = json_string_value(v);
        if (!json_object_get(props, name) && !json_array_has_string(req, name))
            json_array_append_new(req, json_string(name));
    }
    return req;
}

static int check_required_list(const json_t *listed, char *err, size_t errlen)
{
    if (!listed || json_is_null(listed))
        return 0;
    if (!json_is_array(listed))
        return set_error(err, errlen, EINVAL, "parameters: required must be a list of names");
    size_t i;
    const json_t *v;
    json_array_foreach(listed, i, v)
    {
        if (!json_is_string(v))
            return set_error(err, errlen, EINVAL,
                             "parameters: required must be a list of names, found %s",
                             json_kind(v));
    }
    return 0;
}

int action_normalise_schema(const json_t *parameters, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!parameters || json_is_null(parameters)) {
        *out = action_schema_empty();
        return 0;
    }
    if (!json_is_object(parameters))
        return set_error(err, errlen, EINVAL, "parameters must be a mapping, got %s",
                         json_kind(parameters));
    bool schema_form = is_json_schema_form(parameters);
    const json_t *src = schema_form ? json_object_get(parameters, "properties") : parameters;
    const json_t *listed = schema_form ? json_object_get(parameters, "required") : NULL;
    int rc = check_required_list(listed, err, errlen);
    if (rc < 0)
        return rc;
    json_t *props = json_object();
    json_t *flagged = json_array();
    const char *name;
    const json_t *def;
    json_object_foreach((json_t *)src, name, def)
    {
        json_t *prop;
        bool required;
        rc = normalise_property(name, def, &prop, &required, err, errlen);
        if (rc < 0)
            goto fail;
        json_object_set_new(props, name, prop);
        if (required)
            json_array_append_new(flagged, json_string(name));
    }
    json_t *req = build_required(props, flagged, json_is_array(listed) ? listed : NULL);
    *out = json_pack("{s:s, s:o, s:o}", "type", "object", "properties", props, "required", req);
    json_decref(flagged);
    return 0;
fail:
    json_decref(props);
    json_decref(flagged);
    return rc;
}
