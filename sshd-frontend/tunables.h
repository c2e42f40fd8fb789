/* tunables.h - the glibc tunables warrend runs with (tunables.c). */
#ifndef WARREN_TUNABLES_H
#define WARREN_TUNABLES_H

#include <stdbool.h>

/* true on a CPU whose vendor is AMD (cpuid leaf 0); false elsewhere and on
 * other architectures */
bool tunables_cpu_is_amd(void);

/* The GLIBC_TUNABLES value warrend starts again with: warren's own, then
 * the operator's (NULL: none), which so win where both set one. Allocated;
 * NULL when out of memory. */
char *tunables_compose(bool amd, const char *operator_tunables);

#endif
