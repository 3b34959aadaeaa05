#ifndef ROADWATCH_CFFMPEG_SHIM_H
#define ROADWATCH_CFFMPEG_SHIM_H

#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavdevice/avdevice.h>
#include <libavutil/avutil.h>
#include <libavutil/error.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libavutil/sha.h>
#include <libswscale/swscale.h>
#include <errno.h>

// Function-like macros Swift cannot import, exposed as inline functions.
static inline int rw_averror(int e) { return AVERROR(e); }
static inline int rw_averror_eof(void) { return AVERROR_EOF; }
static inline int rw_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }
static inline int64_t rw_nopts_value(void) { return AV_NOPTS_VALUE; }
static inline AVRational rw_time_base_q(void) { return AV_TIME_BASE_Q; }

#endif
