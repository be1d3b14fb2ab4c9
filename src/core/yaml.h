/* Conversion between YAML text and jansson values, used for configuration,
 * action definitions, secrets files, parameters and action output. */
#ifndef ATTUNE_CORE_YAML_H
#define ATTUNE_CORE_YAML_H

#include <jansson.h>
#include <stddef.h>

#include "core/util.h"

/* Parses the first YAML document in text. An empty document gives JSON null.
 * Plain scalars are typed as YAML 1.2 core (null, true/false, integers,
 * floats); quoted ones are strings. Returns 0 and a new reference in *out, or
 * -EINVAL with "line N: problem" in err. Nesting deeper than 64 levels and
 * alias expansion beyond a fixed node budget are rejected. */
int yaml_parse(const char *text, size_t len, json_t **out, char *err, size_t errlen);

/* Reads the file at path and parses it as yaml_parse does; err says
 * "PATH: problem". Returns 0, -EFBIG when the file holds more than max_bytes,
 * -EINVAL when it is not valid YAML, or the -errno of opening or reading it.
 * The text is wiped before it is freed since files such as the configuration
 * can hold secrets. */
int yaml_load_file(const char *path, size_t max_bytes, json_t **out, char *err, size_t errlen);

/* Appends value as a YAML document (block style) to out. Returns 0 or -EINVAL. */
int yaml_emit(const json_t *value, struct strbuf *out);

#endif
