"""_ffi.py - libgemroute.so.1 loaded with ctypes, and mirrors of the structs
of include/gemroute.h.

The mirrors must match the C layout field for field:
tests/python/test_gemroute.py compares each one with what a C program
compiled against the header reports (tests/python/layout.c).  When the
header changes a struct, change it here too.
"""
import ctypes
import ctypes.util
import os

NAME_MAX = 64           # GR_NAME_MAX
KEY_MAX = 128           # GR_KEY_MAX
URL_MAX = 256           # GR_URL_MAX
NDIMS = 5               # GR_NDIMS
MAX_QUOTA_IDS = 4       # GR_MAX_QUOTA_IDS
QUOTA_ID_MAX = 128      # GR_QUOTA_ID_MAX

c_int64 = ctypes.c_int64
c_uint32 = ctypes.c_uint32
c_uint64 = ctypes.c_uint64


class Cost(ctypes.Structure):
    _fields_ = [("requests", c_int64), ("tokens", c_int64),
                ("images", c_int64)]


class Lease(ctypes.Structure):
    _fields_ = [("project", ctypes.c_char * NAME_MAX),
                ("model", ctypes.c_char * NAME_MAX),
                ("key", ctypes.c_char * KEY_MAX),
                ("base_url", ctypes.c_char * URL_MAX),
                ("proxy", ctypes.c_char * URL_MAX),
                ("retry_at_ns", c_int64),
                ("slot", c_uint32),
                ("cell", c_uint32),
                ("ticket", c_uint64),
                ("project_gen", c_uint32),
                ("key_index", c_uint32),
                ("admitted_ns", c_int64),
                ("cost", Cost),
                ("batch", ctypes.c_void_p),
                ("batch_serial", c_uint64)]


class Usage(ctypes.Structure):
    _fields_ = [("tokens", c_int64), ("images", c_int64),
                ("first_byte_ns", c_int64)]


class Verdict(ctypes.Structure):
    _fields_ = [("status", ctypes.c_int),
                ("cls", ctypes.c_int),                  # enum gr_class
                ("dims", ctypes.c_uint),
                ("cooldown_s", ctypes.c_double),
                ("cooldown_src", ctypes.c_int),         # enum gr_cool_src
                ("disable", ctypes.c_int),              # enum gr_disable
                ("retryable", ctypes.c_bool),
                ("learned", c_int64 * NDIMS),
                ("n_quota_ids", ctypes.c_uint),
                ("quota_ids", (ctypes.c_char * QUOTA_ID_MAX) * MAX_QUOTA_IDS),
                ("reason", ctypes.c_char * 192)]


class CallOpts(ctypes.Structure):
    _fields_ = [("deadline_ns", c_int64),
                ("queue_deadline_ns", c_int64),
                ("max_attempts", ctypes.c_int),
                ("est_tokens", c_int64),
                ("count_tokens_first", ctypes.c_bool),
                ("backoff_base_ns", c_int64),
                ("backoff_cap_ns", c_int64),
                ("fallback", ctypes.c_int),
                ("cache", ctypes.c_int)]


class Tokens(ctypes.Structure):
    _fields_ = [("prompt", c_int64), ("candidates", c_int64),
                ("thoughts", c_int64), ("total", c_int64)]


class Response(ctypes.Structure):
    _fields_ = [("status", ctypes.c_int),
                ("body", ctypes.POINTER(ctypes.c_char)),
                ("len", ctypes.c_size_t),
                ("project", ctypes.c_char * NAME_MAX),
                ("attempts", ctypes.c_int),
                ("n_429", ctypes.c_int),
                ("queued_ns", c_int64),
                ("elapsed_ns", c_int64),
                ("retry_at_ns", c_int64),
                ("usage", Tokens),
                ("verdict", Verdict),
                ("error", ctypes.c_char * 256),
                ("model", ctypes.c_char * NAME_MAX),
                ("cached", ctypes.c_bool)]


# Every mirror, by the name of its C struct.
STRUCTS = {"gr_cost": Cost, "gr_lease": Lease, "gr_usage": Usage,
           "gr_verdict": Verdict, "gr_call_opts": CallOpts,
           "gr_tokens": Tokens, "gr_response": Response}

# int (*gr_chunk_fn)(void *arg, const char *json, size_t len)
CHUNK_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p,
                            ctypes.POINTER(ctypes.c_char), ctypes.c_size_t)


def _find():
    """$GEMROUTE_LIB, else what the dynamic linker finds."""
    path = os.environ.get("GEMROUTE_LIB")
    if path:
        return path
    return ctypes.util.find_library("gemroute") or "libgemroute.so.1"


def load(path=None):
    """Load the library and declare the functions it exports."""
    lib = ctypes.CDLL(path or _find())
    vp, cp, i64 = ctypes.c_void_p, ctypes.c_char_p, c_int64
    P = ctypes.POINTER
    decl = {
        "gr_open": (vp, [cp, cp, ctypes.c_size_t]),
        "gr_close": (None, [vp]),
        "gr_errstr": (cp, [vp]),
        "gr_reserve": (ctypes.c_int, [vp, cp, P(Cost), i64, P(Lease)]),
        "gr_commit": (None, [vp, P(Lease), P(Usage)]),
        "gr_report": (None, [vp, P(Lease), P(Verdict)]),
        "gr_classify": (None, [ctypes.c_int, cp, ctypes.c_size_t, i64,
                               P(Verdict)]),
        "gr_class_name": (cp, [ctypes.c_int]),
        "gr_dim_name": (cp, [ctypes.c_int]),
        "gr_err_name": (cp, [ctypes.c_int]),
        "gr_now_ns": (i64, []),
        "gr_generate": (ctypes.c_int, [vp, cp, cp, P(CallOpts),
                                       P(Response)]),
        "gr_stream": (ctypes.c_int, [vp, cp, cp, P(CallOpts), CHUNK_FN, vp,
                                     P(Response)]),
        "gr_count_tokens": (ctypes.c_int, [vp, cp, cp, P(CallOpts),
                                           P(Response)]),
        "gr_embed": (ctypes.c_int, [vp, cp, cp, P(CallOpts), P(Response)]),
        "gr_batch_embed": (ctypes.c_int, [vp, cp, cp, P(CallOpts),
                                          P(Response)]),
        # char *: a pointer to free, not a bytes object
        "gr_response_text": (vp, [P(Response)]),
        "gr_response_free": (None, [P(Response)]),
    }
    for name, (res, args) in decl.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    return lib


libc = ctypes.CDLL(None)
libc.free.restype = None
libc.free.argtypes = [ctypes.c_void_p]
