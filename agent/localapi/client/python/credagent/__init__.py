"""Python client of the credagent local API (standard library only).

A flow runner asks the agent on its own machine for credentials, over the
agent's Unix socket (Linux) or named pipe (Windows)::

    import credagent

    client = credagent.Client()                    # the installed agent
    # client = credagent.Client.dev("/path/dev")   # an agent in dev mode
    with client.resolve("sap-prod-admin", run_id=run_id, flow_id="invoices") as res:
        cred = res["sap-prod-admin"]               # raises the typed error if it failed
        login(cred.username, cred.password.reveal())

A password is a :class:`Secret`: it prints, formats and logs as
``[REDACTED]`` and cannot be pickled; ``reveal()`` returns it. Leaving the
``with`` block (or calling ``wipe()``) zeroes the client's own buffer.
Python strings cannot be zeroed, so the string ``reveal()`` returns, and the
one the JSON decoder made, stay in memory until the garbage collector reuses
it: keep them in as few places as possible.

Failures raise :class:`CredAgentError` subclasses named for the agent's
error classes (``ForbiddenError`` for ``forbidden``, ``NotFoundError`` for
``not_found``, ...); each carries ``error_class``, ``code``, ``message``,
``correlation_id``, ``rule``, ``http_status`` and ``retry_after``.
"""

import hashlib
import json
import os
import socket
import sys
import threading

__all__ = [
    "Client", "Secret", "Credential", "Resolution", "CredAgentError",
    "AgentUnreachableError", "ForbiddenError", "RateLimitedError", "OverloadedError",
    "UnknownCredentialError", "NotFoundError", "VaultUnreachableError",
    "ClientCertRejectedError", "AppCertUnreadableError", "StoreMisconfiguredError",
    "TooManyObjectsError", "PasswordChangingError", "CCPTimeoutError",
    "NeedsReenrollError", "FeedStaleError", "ServerError", "InvalidRequestError", "CanceledError",
    "error_for", "default_socket", "dev_socket",
]

__version__ = "1"

_WINDOWS = sys.platform == "win32"
REDACTED = "[REDACTED]"


# ---------------------------------------------------------------- secrets

class Secret:
    """A password. It never shows its content in repr, str, format or logs."""

    __slots__ = ("_b",)

    def __init__(self, b):
        self._b = bytearray(b)

    def reveal(self):
        """The password as a str (which Python cannot zero later)."""
        return self._b.decode("utf-8")

    def reveal_bytes(self):
        """The password as UTF-8 bytes (a copy)."""
        return bytes(self._b)

    def wipe(self):
        """Zero this object's buffer."""
        for i in range(len(self._b)):
            self._b[i] = 0
        del self._b[:]

    def __len__(self):
        return len(self._b)

    def __bool__(self):
        return len(self._b) > 0

    def __repr__(self):
        return REDACTED

    __str__ = __repr__

    def __format__(self, spec):
        return REDACTED

    def __reduce__(self):
        raise TypeError("a credagent.Secret cannot be pickled")

    def __eq__(self, other):
        return NotImplemented

    __hash__ = None


class Credential:
    """One name's answer: username, password (a Secret), properties."""

    __slots__ = ("name", "username", "password", "properties", "from_cache",
                 "stale", "cache_age_ms", "password_change_in_process", "error")

    def __init__(self, name, username="", password=None, properties=None, from_cache=False,
                 stale=False, cache_age_ms=0, password_change_in_process=False, error=None):
        self.name = name
        self.username = username
        self.password = password if password is not None else Secret(b"")
        self.properties = dict(properties or {})
        self.from_cache = from_cache
        self.stale = stale
        self.cache_age_ms = cache_age_ms
        self.password_change_in_process = password_change_in_process
        self.error = error

    def __repr__(self):
        if self.error is not None:
            return "Credential(name=%r, error=%r)" % (self.name, self.error)
        return "Credential(name=%r, username=%r, password=%s)" % (self.name, self.username, REDACTED)

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a credagent.Credential cannot be pickled")

    def wipe(self):
        self.password.wipe()


class Resolution:
    """The answer to resolve(): one Credential per name, in the order asked.

    ``res[name]`` returns the credential or raises its error; iterating
    gives every Credential, failed ones included (``cred.error``)."""

    def __init__(self, credentials):
        self.credentials = list(credentials)

    def __getitem__(self, name):
        for c in self.credentials:
            if c.name == name:
                if c.error is not None:
                    raise c.error
                return c
        raise KeyError(name)

    def __iter__(self):
        return iter(self.credentials)

    def __len__(self):
        return len(self.credentials)

    def raise_for_errors(self):
        """Raise the first name's error, if any failed."""
        for c in self.credentials:
            if c.error is not None:
                raise c.error

    def wipe(self):
        for c in self.credentials:
            c.wipe()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.wipe()
        return False

    def __repr__(self):
        return "Resolution(%r)" % (self.credentials,)


# ----------------------------------------------------------------- errors

class CredAgentError(Exception):
    """A failure answered by the agent (or no answer at all)."""

    error_class = "server_error"

    def __init__(self, message="", error_class=None, code="", correlation_id="", rule="",
                 http_status=0, retry_after=None):
        if error_class:
            self.error_class = error_class
        self.code = code or ""
        self.message = message or ""
        self.correlation_id = correlation_id or ""
        self.rule = rule or ""
        self.http_status = http_status
        self.retry_after = retry_after
        super().__init__(self._text())

    def _text(self):
        s = "credagent: " + self.error_class
        if self.code:
            s += " (" + self.code + ")"
        if self.message:
            s += ": " + self.message
        if self.rule:
            s += " [rule " + self.rule + "]"
        if self.correlation_id:
            s += " [correlation " + self.correlation_id + "]"
        return s


def _cls(name, error_class, doc):
    return type(name, (CredAgentError,), {"error_class": error_class, "__doc__": doc, "__module__": __name__})


AgentUnreachableError = _cls("AgentUnreachableError", "agent_unreachable", "The agent's socket or pipe could not be reached.")
ForbiddenError = _cls("ForbiddenError", "forbidden", "The agent's policy refused this caller (the rule is named).")
RateLimitedError = _cls("RateLimitedError", "rate_limited", "This caller exceeded its rate limit; see retry_after.")
OverloadedError = _cls("OverloadedError", "overloaded", "The agent is at its concurrency limit; see retry_after.")
UnknownCredentialError = _cls("UnknownCredentialError", "unknown_credential", "No credential of that name was delivered to this machine.")
NotFoundError = _cls("NotFoundError", "not_found", "CCP has no such account, or the AppID may not read its safe.")
VaultUnreachableError = _cls("VaultUnreachableError", "vault_unreachable", "CCP or the Vault could not be reached.")
ClientCertRejectedError = _cls("ClientCertRejectedError", "client_cert_rejected", "CCP did not accept the application certificate.")
AppCertUnreadableError = _cls("AppCertUnreadableError", "app_cert_unreadable", "No usable application certificate was delivered.")
StoreMisconfiguredError = _cls("StoreMisconfiguredError", "store_misconfigured", "The store's address, path or AppID is wrong.")
TooManyObjectsError = _cls("TooManyObjectsError", "too_many_objects", "The query matches several accounts.")
PasswordChangingError = _cls("PasswordChangingError", "password_changing", "The CPM is changing the password.")
CCPTimeoutError = _cls("CCPTimeoutError", "timeout", "No answer from CCP in time.")
NeedsReenrollError = _cls("NeedsReenrollError", "needs_reenroll", "The machine key cannot be used: re-enrol the machine.")
FeedStaleError = _cls("FeedStaleError", "feed_stale", "The agent refuses every resolution: its feed has been stale too long.")
ServerError = _cls("ServerError", "server_error", "CCP or the agent failed.")
InvalidRequestError = _cls("InvalidRequestError", "invalid_request", "The request was refused before it was sent.")
CanceledError = _cls("CanceledError", "canceled", "The request was cancelled.")

_BY_CLASS = {c.error_class: c for c in (
    AgentUnreachableError, ForbiddenError, RateLimitedError, OverloadedError, UnknownCredentialError,
    NotFoundError, VaultUnreachableError, ClientCertRejectedError, AppCertUnreadableError,
    StoreMisconfiguredError, TooManyObjectsError, PasswordChangingError, CCPTimeoutError,
    NeedsReenrollError, FeedStaleError, ServerError, InvalidRequestError, CanceledError)}


def error_for(wire, http_status=0, retry_after=None):
    """The typed exception for the agent's error object (a dict)."""
    wire = wire if isinstance(wire, dict) else {}
    cls_name = str(wire.get("class") or "server_error")
    cls = _BY_CLASS.get(cls_name, CredAgentError)
    return cls(message=str(wire.get("message") or ""), error_class=cls_name, code=str(wire.get("code") or ""),
               correlation_id=str(wire.get("correlation_id") or ""), rule=str(wire.get("rule") or ""),
               http_status=http_status, retry_after=retry_after)


# ------------------------------------------------------------- transport

def default_socket():
    """The installed agent's socket path or pipe name."""
    if _WINDOWS:
        return "\\\\.\\pipe\\ProtectedPrefix\\Administrators\\credagent"
    return "/run/credagent/agent.sock"


def dev_socket(directory):
    """The socket of the agent started with `credagent run --dev DIRECTORY`."""
    d = os.path.abspath(directory)
    if _WINDOWS:
        return "\\\\.\\pipe\\credagent-dev-" + hashlib.sha256(d.encode("utf-8")).hexdigest()[:12]
    return os.path.join(d, "agent.sock")


class _UnixConn:
    def __init__(self, path, timeout):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
        except OSError:
            s.close()
            raise
        self._s = s
        self._r = s.makefile("rb")

    def write(self, b):
        self._s.sendall(b)

    def reader(self):
        return self._r

    def close(self):
        try:
            self._r.close()
        finally:
            self._s.close()


class _PipeConn:
    """A named pipe opened as a file, at the Identification impersonation
    level, so that the agent can read the caller's identity but not act as
    the caller."""

    def __init__(self, name, timeout):
        import ctypes
        import msvcrt
        from ctypes import wintypes
        k32 = ctypes.WinDLL("kernel32", use_last_error=True)
        k32.CreateFileW.restype = wintypes.HANDLE
        k32.CreateFileW.argtypes = [wintypes.LPCWSTR, wintypes.DWORD, wintypes.DWORD, wintypes.LPVOID,
                                    wintypes.DWORD, wintypes.DWORD, wintypes.HANDLE]
        k32.WaitNamedPipeW.argtypes = [wintypes.LPCWSTR, wintypes.DWORD]
        k32.CloseHandle.argtypes = [wintypes.HANDLE]
        GENERIC_READ, GENERIC_WRITE, OPEN_EXISTING = 0x80000000, 0x40000000, 3
        SECURITY_SQOS_PRESENT, SECURITY_IDENTIFICATION = 0x00100000, 0x00010000
        ERROR_PIPE_BUSY = 231
        invalid = ctypes.c_void_p(-1).value
        for _ in range(2):
            h = k32.CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, None, OPEN_EXISTING,
                                SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, None)
            if h not in (None, invalid):
                break
            err = ctypes.get_last_error()
            if err != ERROR_PIPE_BUSY:
                raise ctypes.WinError(err)
            k32.WaitNamedPipeW(name, int(timeout * 1000))
        else:
            raise ctypes.WinError(ERROR_PIPE_BUSY)
        try:
            fd = msvcrt.open_osfhandle(h, os.O_RDWR | os.O_BINARY)
        except OSError:
            k32.CloseHandle(h)
            raise
        self._f = os.fdopen(fd, "r+b", buffering=0)
        import io
        self._r = io.BufferedReader(self._f)

    def write(self, b):
        view = memoryview(b)
        while view:
            n = self._f.write(view)
            view = view[n:]

    def reader(self):
        return self._r

    def close(self):
        self._f.close()


def _read_response(r):
    line = r.readline(65537)
    if not line:
        raise EOFError("connection closed")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise CredAgentError("not an HTTP answer from the agent", error_class="server_error")
    status = int(parts[1])
    headers = {}
    while True:
        h = r.readline(65537)
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    body = bytearray()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int(r.readline(1024).split(b";")[0].strip(), 16)
            if size == 0:
                while r.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += r.read(size)
            r.readline(8)
    elif "content-length" in headers:
        n = int(headers["content-length"])
        while len(body) < n:
            chunk = r.read(n - len(body))
            if not chunk:
                raise EOFError("truncated answer")
            body += chunk
    else:
        body += r.read()
        headers["connection"] = "close"
    return status, headers, body


def _zero(b):
    for i in range(len(b)):
        b[i] = 0


class Client:
    """A client of one agent. It keeps one connection open and is safe to
    share between threads (requests are serialised)."""

    def __init__(self, socket_path=None, timeout=60.0):
        self.socket_path = socket_path or default_socket()
        self.timeout = timeout
        self._conn = None
        self._lock = threading.Lock()

    @classmethod
    def dev(cls, directory, timeout=60.0):
        """A client of the agent started with `credagent run --dev DIRECTORY`."""
        return cls(dev_socket(directory), timeout)

    def close(self):
        with self._lock:
            self._drop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _drop(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None

    def _connect(self):
        try:
            if _WINDOWS:
                return _PipeConn(self.socket_path, self.timeout)
            return _UnixConn(self.socket_path, self.timeout)
        except OSError as e:
            raise AgentUnreachableError("cannot reach the agent at %s: %s" % (self.socket_path, e)) from None

    def _do(self, method, path, payload=None):
        body = b"" if payload is None else json.dumps(payload).encode("utf-8")
        req = ("%s %s HTTP/1.1\r\nHost: credagent\r\nUser-Agent: credagent-python/%s\r\n"
               "Accept: application/json\r\nContent-Length: %d\r\n" % (method, path, __version__, len(body)))
        if payload is not None:
            req += "Content-Type: application/json\r\n"
        data = req.encode("latin-1") + b"\r\n" + body
        with self._lock:
            for attempt in (0, 1):
                fresh = self._conn is None
                if fresh:
                    self._conn = self._connect()
                try:
                    self._conn.write(data)
                    status, headers, raw = _read_response(self._conn.reader())
                except (OSError, EOFError) as e:
                    self._drop()
                    # A kept-alive connection the agent closed meanwhile:
                    # send once more on a new one.
                    if not fresh and attempt == 0:
                        continue
                    raise AgentUnreachableError("the agent did not answer: %s" % (e,)) from None
                if headers.get("connection", "").lower() == "close":
                    self._drop()
                break
        return status, headers, raw

    def _call(self, method, path, payload=None):
        status, headers, raw = self._do(method, path, payload)
        try:
            doc = json.loads(raw.decode("utf-8")) if raw else {}
        except ValueError:
            doc = None
        finally:
            _zero(raw)
        if status != 200:
            retry = None
            if "retry-after" in headers:
                try:
                    retry = float(headers["retry-after"])
                except ValueError:
                    pass
            wire = doc.get("error") if isinstance(doc, dict) else None
            if wire is None:
                wire = {"class": "server_error", "message": "HTTP %d" % status}
            raise error_for(wire, status, retry)
        if not isinstance(doc, dict):
            raise ServerError("the agent's answer is not JSON")
        return doc

    def resolve(self, *names, run_id=None, flow_id=""):
        """Resolve names; returns a Resolution (use it in a with block)."""
        names = _names(names)
        doc = self._call("POST", "/v1/resolve", {"run_id": run_id or _default_run_id(), "flow_id": flow_id or "", "names": names})
        results = doc.get("results") or {}
        out = []
        for n in names:
            item = results.get(n)
            if not isinstance(item, dict):
                out.append(Credential(n, error=ServerError("no answer for %r" % n)))
                continue
            if item.get("error") is not None:
                out.append(Credential(n, error=error_for(item["error"])))
                continue
            pw = item.get("password") or ""
            out.append(Credential(
                n, username=str(item.get("username") or ""), password=Secret(pw.encode("utf-8")),
                properties=item.get("properties") or {}, from_cache=bool(item.get("from_cache")),
                stale=bool(item.get("stale")), cache_age_ms=int(item.get("cache_age_ms") or 0),
                password_change_in_process=bool(item.get("password_change_in_process"))))
            item["password"] = None
            del pw
        return Resolution(out)

    def get(self, name, run_id=None, flow_id=""):
        """Resolve one name and return its Credential, or raise its error."""
        return self.resolve(name, run_id=run_id, flow_id=flow_id)[name]

    def check(self, *names, run_id=None, flow_id=""):
        """Run the check operation: a dict name -> None (ok) or the error."""
        names = _names(names)
        doc = self._call("POST", "/v1/check", {"run_id": run_id or _default_run_id(), "flow_id": flow_id or "", "names": names})
        results = doc.get("results") or {}
        out = {}
        for n in names:
            r = results.get(n) or {}
            out[n] = None if r.get("ok") else error_for(r.get("error"))
        return out

    def status(self):
        """The agent's status (a dict, as `credagent status --json`)."""
        return self._call("GET", "/v1/status")


def _names(names):
    if len(names) == 1 and isinstance(names[0], (list, tuple)):
        names = tuple(names[0])
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError("name at least one credential (non-empty strings)")
    return list(names)


def _default_run_id():
    return "credagent-python-" + socket.gethostname()
