#ifndef BERTH_CZSTD_SHIM_H
#define BERTH_CZSTD_SHIM_H
#include <zstd.h>
#endif
