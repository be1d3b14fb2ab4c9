/* attune-worker: the worker service and its subcommands (run-action, check-config). */
#include <stdio.h>

int main(void)
{
    puts("attune-worker " ATTUNE_VERSION);
    return 0;
}
