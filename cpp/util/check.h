// CAIRN_CHECK: for our own bugs. It aborts with a message; never use it for
// input or I/O errors, which are a Status.
#pragma once

#include <cstdio>
#include <cstdlib>

#define CAIRN_CHECK(cond)                                                    \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::fprintf(stderr, "cairn: internal check failed at %s:%d: %s\n",    \
                   __FILE__, __LINE__, #cond);                               \
      std::abort();                                                          \
    }                                                                        \
  } while (0)
