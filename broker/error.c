/* Descriptions of the shared error codes. */
#include "broker/error.h"

const char *ceb_strerror(int err)
{
	switch (err) {
	case CEB_OK: return "success";
	case CEB_ENOMEM: return "out of memory";
	case CEB_EINVAL: return "invalid input";
	case CEB_ETOOBIG: return "too large";
	case CEB_EUNSUPPORTED: return "unsupported format";
	case CEB_ENOTFOUND: return "not found";
	case CEB_EFULL: return "queue full";
	case CEB_EUNAVAIL: return "unavailable";
	case CEB_ETIMEDOUT: return "timed out";
	case CEB_EIO: return "I/O error";
	case CEB_ECONFIG: return "configuration error";
	case CEB_ENOTCOMPILED: return "not compiled into this build";
	case CEB_ESTATE: return "wrong state";
	}
	return "unknown error";
}
