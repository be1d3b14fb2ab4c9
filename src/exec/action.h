/* An action's definition as the engine needs it: loaded from a pack on disk
 * ({packs_base_dir}/{pack}/actions/{name}.yaml) or, in service mode, from the
 * database. */
#ifndef ATTUNE_EXEC_ACTION_H
#define ATTUNE_EXEC_ACTION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "exec/action_schema.h"

enum param_delivery { PARAM_DELIVERY_STDIN, PARAM_DELIVERY_FILE };
enum param_format { PARAM_FORMAT_JSON, PARAM_FORMAT_YAML, PARAM_FORMAT_DOTENV };
enum output_format {
    OUTPUT_FORMAT_TEXT,
    OUTPUT_FORMAT_JSON,
    OUTPUT_FORMAT_YAML,
    OUTPUT_FORMAT_JSONL
};

struct action {
    char *ref;         /* "pack.name" */
    char *pack_ref;    /* "pack" */
    char *name;        /* "name" */
    char *label;       /* may be NULL */
    char *description; /* may be NULL */
    bool enabled;
    char *runner_type; /* a runtime's name; the runtime registry checks it */
    char *entry_point; /* as written: a file under the pack's actions/ */
    char *pack_dir;    /* absolute path of the pack directory */
    char *entry_path;  /* absolute path of the entry point file */
    enum param_delivery parameter_delivery;
    enum param_format parameter_format;
    enum output_format output_format;
    int timeout_seconds; /* 0 when the action sets none */
    /* Normalised JSON schema: {"type":"object","properties":{NAME:{...}},"required":[...]}.
     * Each property may hold type, description, default, enum, secret. Never NULL. */
    json_t *param_schema;
    char *source_path; /* the file the definition was read from; NULL if none */
    /* The runtime as the database defines it: the runtime row's
     * execution_config, or the chosen runtime version's. NULL: the built-in
     * definition of runner_type. */
    json_t *runtime_config;
    /* entry_point is the code itself (an ad-hoc action), not a file; entry_path
     * is then NULL. */
    bool inline_code;
    /* The action's output schema as stored (action.out_schema); NULL when
     * none. Its "secret": true fields are kept out of the stored result. */
    json_t *out_schema;
};

struct action *action_new(void);
void action_free(struct action *action);

/* The timeout an execution gets: the one requested for it when above 0, else
 * the action's, else fallback (worker.task_timeout). */
int action_timeout_seconds(const struct action *action, int requested, int fallback);

/* Loads PACK.ACTION from packs_dir/PACK/actions/ACTION.yaml (".yml" also).
 * Checks: the YAML parses and is a mapping; runner_type is set (which names
 * are runtimes is the registry's to say: registry_check_runner); entry_point is set, stays inside
 * actions/ and exists; the enums hold known values; parameters are a valid map or JSON-schema
 * object. On failure returns a negative errno and a one-line message naming the file and the
 * problem. */
int action_load_from_pack(const char *packs_dir, const char *action_ref, struct action **out,
                          char *err, size_t errlen);

/* An action's settings as plain values, from a definition file or a database
 * row; strings are borrowed. */
struct action_fields {
    const char *name; /* without the pack prefix */
    const char *runner_type;
    const char *entry_point;
    const char *label;              /* may be NULL */
    const char *description;        /* may be NULL */
    const char *parameter_delivery; /* NULL: stdin */
    const char *parameter_format;   /* NULL: json */
    const char *output_format;      /* NULL: text */
    int timeout_seconds;            /* 0: none */
    bool enabled;
    const json_t *parameters;     /* map or JSON-schema form; NULL: none */
    const json_t *runtime_config; /* see struct action; NULL: built-in */
    bool inline_code;             /* entry_point is code, not a file */
    const json_t *out_schema;     /* see struct action; NULL: none */
};

/* Builds an action from its settings with the checks of a file's: names,
 * runner_type present, entry_point inside actions/ and there, known formats,
 * a valid parameter schema. pack_dir is the pack's directory. */
int action_from_fields(const struct action_fields *fields, const char *pack_ref,
                       const char *pack_dir, struct action **out, char *err, size_t errlen);

/* Builds an action from an already parsed YAML/JSON definition (the same keys
 * as the file); pack_dir is the pack's directory. Used by the loader above and
 * by `attunectl pack load`. */
int action_from_definition(const json_t *def, const char *pack_ref, const char *pack_dir,
                           struct action **out, char *err, size_t errlen);

bool param_delivery_parse(const char *s, enum param_delivery *out);
bool param_format_parse(const char *s, enum param_format *out);
bool output_format_parse(const char *s, enum output_format *out);
const char *param_delivery_name(enum param_delivery v);
const char *param_format_name(enum param_format v);
const char *output_format_name(enum output_format v);

#endif
