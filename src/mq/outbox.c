/* The publisher-confirm outbox (see outbox.h). */
#include "mq/outbox.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static void outbox_message_free(struct outbox_message *m)
{
    free(m->routing_key);
    free(m->body);
    free(m->message_id);
    free(m->correlation_id);
    free(m);
}

struct outbox_message *outbox_add(struct outbox *ob, const char *routing_key, const char *body,
                                  const char *message_id, const char *correlation_id)
{
    struct outbox_message *m = xcalloc(1, sizeof(*m));
    m->routing_key = xstrdup(routing_key);
    m->body = xstrdup(body);
    m->message_id = xstrdup(message_id);
    m->correlation_id = xstrdup(correlation_id);
    if (ob->tail)
        ob->tail->next = m;
    else
        ob->head = m;
    ob->tail = m;
    ob->count++;
    ob->bytes += strlen(m->body);
    return m;
}

static bool outbox_matches(const struct outbox_message *m, uint64_t tag, bool multiple)
{
    return m->seq != 0 && (multiple ? m->seq <= tag : m->seq == tag);
}

void outbox_confirm(struct outbox *ob, uint64_t tag, bool multiple)
{
    struct outbox_message **link = &ob->head, *prev = NULL;
    while (*link) {
        struct outbox_message *m = *link;
        if (!outbox_matches(m, tag, multiple)) {
            prev = m;
            link = &m->next;
            continue;
        }
        *link = m->next;
        if (ob->tail == m)
            ob->tail = prev;
        ob->count--;
        ob->bytes -= strlen(m->body);
        outbox_message_free(m);
    }
}

void outbox_unsend(struct outbox *ob, uint64_t tag, bool multiple)
{
    for (struct outbox_message *m = ob->head; m; m = m->next)
        if (outbox_matches(m, tag, multiple))
            m->seq = 0;
}

void outbox_unsend_all(struct outbox *ob)
{
    for (struct outbox_message *m = ob->head; m; m = m->next)
        m->seq = 0;
}

struct outbox_message *outbox_next_unsent(const struct outbox *ob, struct outbox_message *after)
{
    struct outbox_message *m = after ? after->next : ob->head;
    while (m && m->seq != 0)
        m = m->next;
    return m;
}

void outbox_free(struct outbox *ob)
{
    while (ob->head) {
        struct outbox_message *m = ob->head;
        ob->head = m->next;
        outbox_message_free(m);
    }
    ob->tail = NULL;
    ob->count = ob->bytes = 0;
}
