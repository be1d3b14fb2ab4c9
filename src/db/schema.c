/* The database schema of Attune's tables (see schema.h). */
#include "db/schema.h"

#include <string.h>

#include "core/util.h"

char *db_schema_sql(const char *sql, const char *schema)
{
    static const char qualifier[] = DB_DEFAULT_SCHEMA ".";
    if (!schema || strcmp(schema, DB_DEFAULT_SCHEMA) == 0)
        return xstrdup(sql);
    struct strbuf out;
    strbuf_init(&out);
    for (const char *p = sql, *hit; *p; p = hit + strlen(qualifier)) {
        hit = strstr(p, qualifier);
        if (!hit) {
            strbuf_puts(&out, p);
            break;
        }
        strbuf_append(&out, p, (size_t)(hit - p));
        strbuf_printf(&out, "\"%s\".", schema); /* config allows [A-Za-z0-9_] only */
    }
    return strbuf_detach(&out, NULL);
}

char *db_schema_options(const char *schema)
{
    return xasprintf("-c search_path=\"%s\",public", schema ? schema : DB_DEFAULT_SCHEMA);
}
