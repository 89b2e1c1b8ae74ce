/* Example native plugin: counts words in its input and tries to read a file outside its grant.
 * Build: cc -shared -fPIC -I ffi -o libwordcount.so examples/native/wordcount.c */
#include "bulkhead_plugin.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const bh_host_api* host;

static int reply(const char* text, uint8_t** out, size_t* out_len) {
  size_t len = strlen(text);
  *out = malloc(len ? len : 1);
  if (*out == NULL) return BH_ERR_RESOURCE;
  memcpy(*out, text, len);
  *out_len = len;
  return BH_OK;
}

BH_EXPORT uint32_t bh_abi_version(void) { return BH_ABI_VERSION; }

BH_EXPORT int bh_init(const bh_host_api* api) {
  host = api;
  host->log(BH_LOG_INFO, "wordcount ready");
  return BH_OK;
}

BH_EXPORT int bh_call(const char* method, const uint8_t* in, size_t in_len, uint8_t** out,
                      size_t* out_len) {
  char buf[64];
  if (strcmp(method, "count") == 0) {
    /* Input and output are JSON: a string in, {"words": n} out. */
    size_t words = 0;
    int in_word = 0;
    for (size_t i = 0; i < in_len; i++) {
      if (in[i] == '"' || isspace(in[i])) {
        in_word = 0;
      } else if (!in_word) {
        in_word = 1;
        words++;
      }
    }
    snprintf(buf, sizeof buf, "{\"words\":%zu}", words);
    return reply(buf, out, out_len);
  }
  if (strcmp(method, "peek") == 0) {
    FILE* f = fopen("/etc/hostname", "r");
    snprintf(buf, sizeof buf, "\"%s\"", f == NULL ? "denied" : "ESCAPED");
    if (f != NULL) fclose(f);
    return reply(buf, out, out_len);
  }
  return BH_ERR_METHOD;
}

BH_EXPORT void bh_free(void* p) { free(p); }

BH_EXPORT void bh_shutdown(void) {}
