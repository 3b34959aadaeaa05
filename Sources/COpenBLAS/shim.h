#ifndef ROADWATCH_COPENBLAS_SHIM_H
#define ROADWATCH_COPENBLAS_SHIM_H

#include <cblas.h>

#endif
