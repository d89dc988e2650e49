"""gemroute - Python over libgemroute.so.1 (ctypes, standard library only).

A Python worker attaches to the table gemrouted publishes, reserves room
on some Google Cloud project before each Gemini call, makes the call
with the key and URL the lease names (with the SDK of its choice), then
reports what the answer meant and settles the lease:

    import gemroute

    with gemroute.open() as table:          # $GEMROUTE_SHM, else /gemroute
        with table.reserve("gemini-2.5-flash", tokens=1200,
                           timeout=30) as lease:
            # any HTTP client or SDK, with lease.base_url and lease.key
            status, body, prompt_tokens = my_call(lease)
            lease.report(gemroute.classify(status, body))
            lease.commit(tokens=prompt_tokens)  # what Google counted

The lease settles when the block ends even if nothing committed it (the
estimate is kept).  Or the library makes the whole call, retries
included:

        r = table.generate("gemini-2.5-flash",
                           {"contents": [{"parts": [{"text": "Hello"}]}]})
        print(r.text)

The library is libgemroute.so.1 from $GEMROUTE_LIB, else wherever the
dynamic linker finds it.  bindings/python/README.md tells more.
"""
import ctypes
import json as _json
import threading
import time as _time

from . import _ffi

__all__ = ["open", "classify", "now_ns", "Table", "Lease", "Verdict",
           "Response", "Error", "NoRoom", "DeadlineExceeded", "NoModel",
           "InvalidArgument", "TableError", "StaleLease", "CallFailed",
           "TooBig", "SpendCap",
           "DIMS", "CLASSES"]

# enum gr_err
(OK, ENOROOM, EDEADLINE, ENOMODEL, EINVAL, ESHM, ESTALE, ECALL, ENOMEM,
 ETOOBIG, ESPEND) = range(11)
DIMS = ("rpm", "tpm", "rpd", "ipm", "tpd")          # enum gr_dim, in order
CLASSES = ("ok", "quota", "overload", "server", "auth", "request", "model",
           "unknown")                           # enum gr_class, in order
_COOL_SRC = ("none", "retryinfo", "message", "backoff", "midnight")
_DISABLE = ("none", "cell", "project", "key")
_NS = 1000000000

_lib = None
_lib_lock = threading.Lock()


def _L():
    """The library, loaded on first use."""
    global _lib
    with _lib_lock:
        if _lib is None:
            _lib = _ffi.load()
        return _lib


class Error(Exception):
    """A libgemroute call failed: .code is its enum gr_err value, .name
    the library's name for it; .response the call's Response, if any."""

    def __init__(self, code, message, response=None, retry_at_ns=0):
        super().__init__(message)
        self.code = code
        self.name = _L().gr_err_name(code).decode()
        self.response = response
        self.retry_at_ns = retry_at_ns


class NoRoom(Error):
    """GR_ENOROOM: no project has room now; .retry_at_ns says when."""


class DeadlineExceeded(Error):
    """GR_EDEADLINE: the deadline passed before room (or an answer) came."""


class NoModel(Error):
    """GR_ENOMODEL: no project serves that model."""


class InvalidArgument(Error):
    """GR_EINVAL."""


class TableError(Error):
    """GR_ESHM: the table is missing, foreign or damaged."""


class StaleLease(Error):
    """GR_ESTALE."""


class TooBig(Error):
    """GR_ETOOBIG: the request is above the largest window of every
    project serving the model; nothing was sent."""


class SpendCap(Error):
    """GR_ESPEND: a spend cap (the pool's, or every project's that could
    take the call) is reached for the Pacific day or month; nothing was
    sent."""


class CallFailed(Error):
    """GR_ECALL: the answer is an error not worth retrying, or attempts
    ran out; .response holds the last answer."""


_ERRORS = {ENOROOM: NoRoom, EDEADLINE: DeadlineExceeded, ENOMODEL: NoModel,
           EINVAL: InvalidArgument, ESHM: TableError, ESTALE: StaleLease,
           ECALL: CallFailed, ENOMEM: MemoryError, ETOOBIG: TooBig,
           ESPEND: SpendCap}


def _raise(code, message, response=None, retry_at_ns=0):
    cls = _ERRORS.get(code, Error)
    if cls is MemoryError:
        raise MemoryError(message)
    raise cls(code, message, response, retry_at_ns)


def _text(raw):
    return raw.decode("utf-8", "replace")


def _body(b):
    """str, bytes or a JSON-able object -> bytes."""
    if isinstance(b, bytes):
        return b
    if isinstance(b, str):
        return b.encode()
    return _json.dumps(b).encode()


def now_ns():
    """CLOCK_MONOTONIC now, in ns: the clock of every deadline."""
    return _L().gr_now_ns()


def _deadline(timeout):
    """Seconds from now -> an instant; None -> 0."""
    if timeout is None:
        return 0
    return now_ns() + int(timeout * _NS)


class Verdict:
    """What an answer means (struct gr_verdict), from classify()."""

    def __init__(self, raw):
        self._raw = raw
        self.status = raw.status
        self.cls = CLASSES[raw.cls] if 0 <= raw.cls < len(CLASSES) \
            else "unknown"
        self.dims = [d for i, d in enumerate(DIMS) if raw.dims & (1 << i)]
        self.cooldown_s = raw.cooldown_s
        self.cooldown_source = _COOL_SRC[raw.cooldown_src] \
            if 0 <= raw.cooldown_src < len(_COOL_SRC) else "none"
        self.disable = _DISABLE[raw.disable] \
            if 0 <= raw.disable < len(_DISABLE) else "none"
        self.retryable = bool(raw.retryable)
        self.learned = {d: raw.learned[i] for i, d in enumerate(DIMS)
                        if raw.learned[i] >= 0}
        n = min(raw.n_quota_ids, _ffi.MAX_QUOTA_IDS)
        self.quota_ids = [_text(raw.quota_ids[i].value) for i in range(n)]
        self.reason = _text(raw.reason)

    def __repr__(self):
        return "Verdict(status=%d, cls=%r, dims=%r, cooldown_s=%g, " \
            "retryable=%r, reason=%r)" % (self.status, self.cls, self.dims,
                                          self.cooldown_s, self.retryable,
                                          self.reason)


def classify(status, body=b"", now=None):
    """Classify an answer (HTTP status, body) as the library does; status 0
    means no answer came.  now: unix time for per-day cooldowns."""
    raw = _ffi.Verdict()
    b = _body(body)
    _L().gr_classify(int(status), b, len(b),
                     int(_time.time() if now is None else now),
                     ctypes.byref(raw))
    return Verdict(raw)


class Response:
    """The outcome of a call the library made (struct gr_response)."""

    def __init__(self, raw):
        self.status = raw.status
        self.body = ctypes.string_at(raw.body, raw.len) \
            if raw.body and raw.len else b""
        t = _L().gr_response_text(ctypes.byref(raw))
        if t:
            self.text = _text(ctypes.string_at(t))
            _ffi.libc.free(t)
        else:
            self.text = None
        self.project = _text(raw.project)
        self.attempts = raw.attempts
        self.n_429 = raw.n_429
        self.queued_ns = raw.queued_ns
        self.elapsed_ns = raw.elapsed_ns
        self.retry_at_ns = raw.retry_at_ns
        u = raw.usage
        self.usage = {"prompt": u.prompt, "candidates": u.candidates,
                      "thoughts": u.thoughts, "total": u.total}
        self.verdict = Verdict(raw.verdict)
        self.error = _text(raw.error)

    def json(self):
        """The body parsed (a stream's body is its SSE text: use text)."""
        return _json.loads(self.body)

    def __repr__(self):
        return "Response(status=%d, project=%r, attempts=%d, error=%r)" % (
            self.status, self.project, self.attempts, self.error)


class Lease:
    """A reservation (struct gr_lease): project, key, base_url, proxy name
    where to make the call.  Settle it with commit(), once; as a context
    manager it commits on exit whatever happened, keeping the estimate
    unless commit() was called in the block."""

    def __init__(self, table, raw):
        self._table = table
        self._raw = raw
        self._settled = False
        self.project = _text(raw.project)
        self.model = _text(raw.model)
        self.key = _text(raw.key)          # secret: never log it
        self.base_url = _text(raw.base_url)
        self.proxy = _text(raw.proxy)      # may hold a password

    @property
    def settled(self):
        return self._settled

    def report(self, verdict):
        """Tell the table what the answer meant (before commit)."""
        if self._settled:
            raise StaleLease(ESTALE, "report after commit")
        self._table._check()
        if not isinstance(verdict, Verdict):
            raise TypeError("report() takes a Verdict, from classify()")
        _L().gr_report(self._table._g, ctypes.byref(self._raw),
                       ctypes.byref(verdict._raw))

    def commit(self, tokens=-1, images=-1, first_byte_ns=0):
        """Settle with what the call used: input tokens Google counted
        (promptTokenCount; < 0 keeps the estimate), images, and the
        CLOCK_MONOTONIC instant the answer's first byte came (0 = now).
        A second commit does nothing."""
        if self._settled:
            return
        self._table._check()
        u = _ffi.Usage(int(tokens), int(images), int(first_byte_ns))
        _L().gr_commit(self._table._g, ctypes.byref(self._raw),
                       ctypes.byref(u))
        self._settled = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self._table.closed:
            self.commit()
        return False

    def __repr__(self):
        # Never the key, nor the proxy (it may carry a password).
        return "Lease(project=%r, model=%r, base_url=%r, key=...%s, " \
            "settled=%r)" % (self.project, self.model, self.base_url,
                             self.key[-4:] if len(self.key) > 8 else "",
                             self._settled)


class Table:
    """A handle on the table (struct gr).  Thread-safe; close() it, or use
    it as a context manager.  shm: the table's name; None means
    $GEMROUTE_SHM, else /gemroute."""

    def __init__(self, shm=None):
        err = ctypes.create_string_buffer(512)
        self._g = _L().gr_open(shm.encode() if shm else None, err,
                               len(err))
        if not self._g:
            raise TableError(ESHM, _text(err.value))

    @property
    def closed(self):
        return self._g is None

    def _check(self):
        if self._g is None:
            raise ValueError("the table handle is closed")

    def close(self):
        """Detach.  Leases not yet committed are settled by the router."""
        if self._g is not None:
            _L().gr_close(self._g)
            self._g = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def errstr(self):
        """A sentence about the last failure."""
        self._check()
        return _text(_L().gr_errstr(self._g) or b"")

    def reserve(self, model, tokens=0, images=0, requests=1, timeout=None,
                deadline_ns=None):
        """Reserve room for one call on some project serving model.
        timeout None never waits (NoRoom, with .retry_at_ns); else wait up
        to timeout seconds (DeadlineExceeded).  deadline_ns, an instant of
        now_ns(), overrides timeout."""
        self._check()
        cost = _ffi.Cost(int(requests), int(tokens), int(images))
        raw = _ffi.Lease()
        dl = deadline_ns if deadline_ns is not None else _deadline(timeout)
        rc = _L().gr_reserve(self._g, model.encode(), ctypes.byref(cost),
                             int(dl), ctypes.byref(raw))
        if rc != OK:
            _raise(rc, "reserve %s: %s" % (model, self.errstr()),
                   retry_at_ns=raw.retry_at_ns)
        return Lease(self, raw)

    def _opts(self, timeout, queue_timeout, max_attempts, est_tokens,
              count_tokens_first):
        o = _ffi.CallOpts()
        if timeout is not None:
            o.deadline_ns = _deadline(timeout)
        if queue_timeout is not None:
            o.queue_deadline_ns = _deadline(queue_timeout)
        o.max_attempts = int(max_attempts)
        o.est_tokens = int(est_tokens)
        o.count_tokens_first = bool(count_tokens_first)
        return o

    def _call(self, fn, what, model, request, timeout, queue_timeout,
              max_attempts, est_tokens, count_tokens_first, extra=()):
        self._check()
        raw = _ffi.Response()
        opts = self._opts(timeout, queue_timeout, max_attempts, est_tokens,
                          count_tokens_first)
        rc = fn(self._g, model.encode(), _body(request), ctypes.byref(opts),
                *extra, ctypes.byref(raw))
        try:
            r = Response(raw)
        finally:
            _L().gr_response_free(ctypes.byref(raw))
        if rc != OK:
            _raise(rc, "%s %s: %s" % (what, model,
                                      r.error or _text(
                                          _L().gr_err_name(rc))),
                   r, r.retry_at_ns)
        return r

    def generate(self, model, request, timeout=None, queue_timeout=None,
                 max_attempts=0, est_tokens=0, count_tokens_first=False):
        """models/{model}:generateContent with request (a dict, or JSON as
        str or bytes): reserve, call, classify, report, settle, retry.
        Returns a Response; raises CallFailed, DeadlineExceeded, NoModel...
        with .response.  timeout: seconds (default 120), queue_timeout:
        most seconds to wait for room."""
        return self._call(_L().gr_generate, "generate", model, request,
                          timeout, queue_timeout, max_attempts, est_tokens,
                          count_tokens_first)

    def stream(self, model, request, on_event, timeout=None,
               queue_timeout=None, max_attempts=0, est_tokens=0,
               count_tokens_first=False):
        """streamGenerateContent: on_event(dict) sees each event as it
        comes; returning True (or raising) stops the stream."""
        failure = []

        def cb(arg, data, n):
            try:
                stop = on_event(_json.loads(ctypes.string_at(data, n)))
                return 1 if stop else 0
            except BaseException as e:     # re-raised after the call
                failure.append(e)
                return 1
        fn = _ffi.CHUNK_FN(cb)
        try:
            return self._call(_L().gr_stream, "stream", model, request,
                              timeout, queue_timeout, max_attempts,
                              est_tokens, count_tokens_first, (fn, None))
        except Error:
            if failure:
                raise failure[0]
            raise

    def count_tokens(self, model, request, timeout=None):
        """models/{model}:countTokens; the count is r.usage["prompt"]."""
        return self._call(_L().gr_count_tokens, "countTokens", model,
                          request, timeout, None, 0, 0, False)

    def embed(self, model, request, timeout=None):
        """models/{model}:embedContent."""
        return self._call(_L().gr_embed, "embedContent", model, request,
                          timeout, None, 0, 0, False)

    def batch_embed(self, model, request, timeout=None):
        """models/{model}:batchEmbedContents."""
        return self._call(_L().gr_batch_embed, "batchEmbedContents", model,
                          request, timeout, None, 0, 0, False)


def open(shm=None):
    """Attach to the table: Table(shm)."""
    return Table(shm)
