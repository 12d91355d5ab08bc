/* Base64 (RFC 4648, standard alphabet, padded): the Binary type of CloudEvents, `data_base64`, and the
 * dead-letter extension `knativeerrordata`. */
#ifndef CEB_BASE64_H
#define CEB_BASE64_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/buf.h"

/* Bytes of the encoded form of len input bytes (padding included, no NUL). */
size_t ceb_base64_encoded_len(size_t len);

/* Append the padded Base64 text of data to out. 0 or CEB_ENOMEM. Any thread. */
int ceb_base64_encode(const void *data, size_t len, struct ceb_buf *out);

/* Append the bytes that the Base64 text s (len bytes) stands for to out. The text must use the
 * standard alphabet with `=` padding to a multiple of 4 characters and no whitespace; unused bits of
 * the last group are ignored, as RFC 4648 section 3.5 allows. 0, CEB_EINVAL for text that is not
 * Base64 (out then holds a partial result), CEB_ENOMEM. */
int ceb_base64_decode(const char *s, size_t len, struct ceb_buf *out);

/* true if ceb_base64_decode would accept s. Allocates nothing. */
bool ceb_base64_valid(const char *s, size_t len);

#endif
