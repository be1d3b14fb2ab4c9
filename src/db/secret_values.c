/* The execution_secret_value table (see secret_values.h). */
#include "db/secret_values.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

int db_secret_values_parse(const char *text, struct secret_values *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!text)
        return 0;
    out->doc = json_loads(text, 0, NULL);
    if (!json_is_array(out->doc))
        return set_error(err, errlen, EINVAL, "the execution's secret values cannot be read");
    out->count = json_array_size(out->doc);
    out->rows = xcalloc(out->count + 1, sizeof(*out->rows));
    for (size_t i = 0; i < out->count; i++) {
        const json_t *item = json_array_get(out->doc, i);
        const char *path = json_string_value(json_object_get(item, "json_path"));
        if (!path)
            return set_error(err, errlen, EINVAL,
                             "a secret value of the execution has no json_path");
        out->rows[i] = (struct secret_value_row){
            .json_path = path,
            .encrypted_value = json_object_get(item, "encrypted_value"),
            .encryption_key_hash = json_string_value(json_object_get(item, "encryption_key_hash")),
        };
    }
    return 0;
}

void db_secret_values_free(struct secret_values *values)
{
    if (!values)
        return;
    free(values->rows);
    /* The encrypted values are ciphertext: nothing to wipe. */
    json_decref(values->doc);
    memset(values, 0, sizeof(*values));
}
