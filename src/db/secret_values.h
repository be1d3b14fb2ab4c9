/* The execution_secret_value table as the worker reads it: the encrypted
 * values of an execution's secret parameters (entity_type execution_config,
 * entity_id the execution). They come with the claim, in the same round trip
 * (DB_EXECUTION_SECRET_VALUES, a json_agg subquery of the execution table's
 * statements), and are handed out as typed rows. */
#ifndef ATTUNE_DB_SECRET_VALUES_H
#define ATTUNE_DB_SECRET_VALUES_H

#include <jansson.h>
#include <stddef.h>

struct secret_value_row {
    const char *json_path;           /* RFC 6901 pointer into execution.config */
    const json_t *encrypted_value;   /* encrypt_json output, a JSON string */
    const char *encryption_key_hash; /* NULL when the column is NULL */
};

/* For the table modules of src/db: one JSON array (or NULL) of the secret
 * values of the execution whose id is the SQL expression id_expr, in id order. */
#define DB_EXECUTION_SECRET_VALUES(id_expr)                                                        \
    "(SELECT json_agg(json_build_object('json_path', s.json_path, 'encrypted_value', "             \
    "s.encrypted_value, 'encryption_key_hash', s.encryption_key_hash) ORDER BY s.id) "             \
    "FROM attune.execution_secret_value s WHERE s.entity_type = 'execution_config' "               \
    "AND s.entity_id = " id_expr ")"

/* Rows parsed out of that array's text; they point into doc. */
struct secret_values {
    json_t *doc;
    struct secret_value_row *rows;
    size_t count;
};

/* Parses the subquery's text (NULL: no rows). A text that does not parse, or
 * an element without a string json_path, is an error (the message holds no
 * value). Returns 0 or -EINVAL; out is always safe to free. */
int db_secret_values_parse(const char *text, struct secret_values *out, char *err, size_t errlen);
void db_secret_values_free(struct secret_values *values);

#endif
