#ifndef ROADWATCH_CMALLOC_SHIM_H
#define ROADWATCH_CMALLOC_SHIM_H

// glibc's malloc tuning (mallopt), for the number of heaps the allocator keeps.
#include <malloc.h>

#endif
