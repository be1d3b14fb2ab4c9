/* Reading typed values out of a libpq result (see query.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "db/query.h"

const char *db_text(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

int64_t db_int64(const PGresult *res, int row, int col)
{
    int64_t v = 0;
    const char *text = db_text(res, row, col);
    if (text && !parse_int64(text, &v))
        v = 0;
    return v;
}

bool db_bool(const PGresult *res, int row, int col)
{
    const char *text = db_text(res, row, col);
    return text && strcmp(text, "t") == 0;
}

json_t *db_json(const PGresult *res, int row, int col, char *err, size_t errlen)
{
    const char *text = db_text(res, row, col);
    if (!text)
        return NULL;
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    if (!v && err)
        snprintf(err, errlen, "%s", jerr.text);
    return v;
}

long db_changed(const PGresult *res)
{
    return atol(PQcmdTuples((PGresult *)res));
}

struct db_id_text db_id(int64_t id)
{
    struct db_id_text t;
    snprintf(t.text, sizeof(t.text), "%lld", (long long)id);
    return t;
}
