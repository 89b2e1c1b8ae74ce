/*
 * bulkhead native plugin ABI, version 1.
 *
 * A native plugin is a shared library (cc -shared -fPIC) that exports the five functions below.
 * bulkhead never loads it into the host process: a sandboxed child process (lib/guest/native_child.ts) loads
 * it from a sealed memfd, checks bh_abi_version(), calls bh_init() once, then bh_call() for each
 * host call, and bh_shutdown() before it exits. Every export is called from one thread, the
 * child's main thread, and never concurrently: a plugin needs no locking for bulkhead's sake.
 *
 * Data crosses the boundary as bytes. When the host passes a JavaScript value instead of a
 * Uint8Array, the bytes are its UTF-8 JSON encoding and the host parses the output as JSON.
 *
 * What a plugin finds itself in (Linux, when the sandbox is available; see sandbox/launcher.ts):
 * - its own user, pid, mount, ipc and uts namespaces, and a network namespace with no network
 *   unless the manifest grants network; an unprivileged uid outside, no capabilities inside;
 * - Landlock: only the granted paths can be opened (read, or read and write);
 * - seccomp: socket(AF_UNIX, ...) and io_uring fail with EACCES;
 * - rlimits: malloc, fork/pthread_create and open fail (ENOMEM, EAGAIN, EMFILE) at the limits;
 *   return BH_ERR_RESOURCE then. The host also kills the process when one call uses more CPU
 *   time than allowed, when resident memory grows past the heap limit, or at the call deadline;
 * - stdout (fd 1) is redirected to stderr, stdin reads /dev/null: printf() is safe, and the
 *   host keeps the last 8 KiB of stderr for crash reports.
 *
 * Minimal plugin:
 *
 *   #include "bulkhead_plugin.h"
 *   #include <stdlib.h>
 *   #include <string.h>
 *   BH_EXPORT uint32_t bh_abi_version(void) { return BH_ABI_VERSION; }
 *   BH_EXPORT int bh_init(const bh_host_api* api) { (void)api; return BH_OK; }
 *   BH_EXPORT int bh_call(const char* method, const uint8_t* in, size_t in_len,
 *                         uint8_t** out, size_t* out_len) {
 *     if (strcmp(method, "echo") != 0) return BH_ERR_METHOD;
 *     *out = malloc(in_len ? in_len : 1);
 *     if (*out == NULL) return BH_ERR_RESOURCE;
 *     memcpy(*out, in, in_len);
 *     *out_len = in_len;
 *     return BH_OK;
 *   }
 *   BH_EXPORT void bh_free(void* p) { free(p); }
 *   BH_EXPORT void bh_shutdown(void) {}
 */
#ifndef BULKHEAD_PLUGIN_H
#define BULKHEAD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. bh_abi_version() must return exactly this value, or the
 * host refuses the library (PluginError ERR_ABI) before calling anything else. */
#define BH_ABI_VERSION 1u

#if defined(__GNUC__) || defined(__clang__)
#define BH_EXPORT __attribute__((visibility("default")))
#else
#define BH_EXPORT
#endif

/* Status codes returned by bh_init(), bh_call() and the host API functions. */
#define BH_OK 0                /* success */
#define BH_ERR_METHOD (-1)     /* bh_call: no such method (host: ERR_METHOD_NOT_FOUND) */
#define BH_ERR_INVALID (-2)    /* bad input (host: ERR_PLUGIN_THREW) */
#define BH_ERR_DENIED (-3)     /* host API: the host refused (its ERR_PERMISSION_DENIED) */
#define BH_ERR_NOT_FOUND (-4)  /* host API: context key has no value */
#define BH_ERR_TOO_SMALL (-5)  /* host API: buffer too small; *len holds the size needed */
#define BH_ERR_INTERNAL (-6)   /* any other failure (host: ERR_PLUGIN_THREW) */
#define BH_ERR_IO (-7)         /* host API: the host connection failed */
#define BH_ERR_RESOURCE (-8)   /* a resource limit was hit: ENOMEM, EAGAIN, EMFILE (host:
                                  ERR_RESOURCE_LIMIT) */

/* Log levels for bh_host_api.log. */
#define BH_LOG_DEBUG 0
#define BH_LOG_INFO 1
#define BH_LOG_WARN 2
#define BH_LOG_ERROR 3

/*
 * Functions the host offers the plugin. Each one is a synchronous round trip to the host process:
 * the plugin's thread blocks until the host answers. Call them only from the thread that is inside
 * bh_init() or bh_call() (the child's main thread), and only during those calls: a call from
 * another thread is queued until the child's JavaScript event loop runs, which it never does while
 * serving calls, so that thread blocks (koffi callback rule).
 *
 * The table and its function pointers stay valid from bh_init() until bh_shutdown() returns.
 */
typedef struct bh_host_api {
  /* BH_ABI_VERSION of the host. */
  uint32_t abi_version;

  /*
   * Reads the context value stored under `key` (NUL-terminated UTF-8) as UTF-8 JSON into `buf`
   * (capacity `cap` bytes; not NUL-terminated) and stores its length in `*len`.
   * Returns BH_OK, BH_ERR_NOT_FOUND (no value), BH_ERR_DENIED (the host's ACL refused the key),
   * BH_ERR_TOO_SMALL (`*len` holds the size needed; call again with a larger buffer) or BH_ERR_IO.
   */
  int (*context_get)(const char* key, uint8_t* buf, size_t cap, size_t* len);

  /*
   * Stores `value` (`len` bytes of UTF-8 JSON) under `key` (NUL-terminated UTF-8).
   * Returns BH_OK, BH_ERR_DENIED, BH_ERR_INVALID (not JSON) or BH_ERR_IO.
   */
  int (*context_set)(const char* key, const uint8_t* value, size_t len);

  /* Sends one log line (`level` is a BH_LOG_* value, `msg` NUL-terminated UTF-8) to the host's
   * logger. Never blocks on the host's answer. */
  void (*log)(int level, const char* msg);
} bh_host_api;

/* Returns the ABI version the library was built against: always BH_ABI_VERSION. Called first,
 * before bh_init(); must have no side effects. */
BH_EXPORT uint32_t bh_abi_version(void);

/*
 * Called once after the version check. `api` stays valid until bh_shutdown() returns.
 * Returns BH_OK, or any other status to refuse to start (host: ERR_PLUGIN_INIT).
 */
BH_EXPORT int bh_init(const bh_host_api* api);

/*
 * Runs `method` (NUL-terminated UTF-8) on `in_len` bytes at `in` (`in` may be NULL when
 * `in_len` is 0; the bytes are valid only during the call).
 * On BH_OK the plugin sets `*out` to a buffer it allocated (released later with bh_free) and
 * `*out_len` to its length; `*out` may stay NULL for an empty result.
 * On failure it returns a BH_ERR_* status and may set `*out`/`*out_len` to a UTF-8 message that
 * becomes the host error's message (also released with bh_free).
 */
BH_EXPORT int bh_call(const char* method, const uint8_t* in, size_t in_len, uint8_t** out,
                      size_t* out_len);

/* Releases a buffer the plugin returned through bh_call(). Called exactly once per buffer. */
BH_EXPORT void bh_free(void* p);

/* Called once before the child exits normally; after it returns the host API is gone. The host
 * kills the process if this does not return within its shutdown deadline. */
BH_EXPORT void bh_shutdown(void);

#ifdef __cplusplus
}
#endif

#endif /* BULKHEAD_PLUGIN_H */
