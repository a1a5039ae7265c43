// Package localapi is the agent's HTTP API on the local socket: the only
// door through which passwords leave the agent.
//
// The server speaks HTTP/1.1 with JSON on a platform/localsock listener
// (see package apitype for the paths and types). Every connection carries
// its caller's OS identity in its context, established once per connection;
// every request is checked before anything else is done, in this order,
// so that a caller the policy does not know takes no shared resource:
//
//   - connections are counted per caller at accept, where the kernel names
//     the caller (at the first request on a named pipe): past
//     api.max_connections_per_caller, or past api.max_connections (whose
//     last sixteenth is kept for privileged callers), the connection gets
//     a 503 and is closed;
//   - the API has one client shape: an Origin or Referer header, even an
//     empty one (403), a Transfer-Encoding (with or without Content-Length)
//     or a request target that is not a path (400) are refused;
//   - a caller's requests in progress are capped (429 with Retry-After);
//   - for resolve and check, a caller that no policy rule matches is
//     refused (403) before its body is read; such refusals are audited in
//     full once per caller and window, then counted (see resolve);
//   - the body must arrive within api.body_timeout (408), is bounded (413),
//     decoded strictly (unknown fields, trailing data, bad names: 400), and
//     the number of names is bounded (400);
//   - only then is a global slot taken (api.max_concurrent: 503 with
//     Retry-After when full), and the per-caller rate limit (429) and the
//     policy's grants (403, naming the rule) are applied by the resolver
//     before any CCP call;
//   - slow clients are cut off by read, write and idle timeouts.
//
// /v1/status gives privileged callers (root, the agent's user, SYSTEM,
// Administrators) the whole view; any other caller sees the agent's health
// and the credential names its rule grants, nothing else.
//
// Passwords are written into one buffer that is zeroed after the response
// has been written, and the resolver's copies are wiped too. The server
// (serve.go) copies the answer into the connection's answer buffer, which
// is zeroed as soon as it has been written; only the kernel's socket buffer
// holds it after that, until the caller reads it.
package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/agent/strictjson"
	"github.com/credagent/credagent/agent/version"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/rs/zerolog"
)

// Resolver is what the server needs of *resolve.Resolver.
type Resolver interface {
	Resolve(ctx context.Context, caller *localsock.Identity, req resolve.Request) resolve.Result
	// Admit refuses (and audits) a caller that no policy rule matches.
	Admit(caller *localsock.Identity, op resolve.Op) *resolve.Error
	// Grants reports whether the caller's rule grants the credential
	// name of owner ("" for unowned): the name and the owner both.
	Grants(caller *localsock.Identity, owner, name string) bool
}

var _ Resolver = (*resolve.Resolver)(nil)

// StatusFunc fills /v1/status. The daemon provides it. Version, StartedAt
// and UptimeMS are filled by the server when left zero.
type StatusFunc func(ctx context.Context) apitype.Status

// Options configure a Server.
type Options struct {
	Resolver Resolver
	Status   StatusFunc
	// ProbeStores runs doctor's store probes in the agent, for
	// POST /v1/doctor/stores. Nil: the endpoint answers 404.
	ProbeStores func(ctx context.Context) []apitype.ProbeResult
	// Sync, if set, polls the feed now and returns when done (credagent
	// sync).
	Sync func(ctx context.Context) error
	// Config holds the limits and timeouts; a zero field takes its default
	// (DefaultLimits, DefaultTimeouts).
	Config Config
	Log    zerolog.Logger
}

// Config is the server's settings: the limits, which SetLimits changes on a
// running server, and the connection timeouts, which hold for the life of
// Serve.
type Config struct {
	Limits
	Timeouts
}

// Limits bound what callers may take of the server. SetLimits applies new
// ones to a running server: requests and connections already admitted keep
// their place, new ones are counted against the new limits.
type Limits struct {
	// MaxRequestBytes bounds a request body; MaxCredentials the names in
	// one request.
	MaxRequestBytes int64
	MaxCredentials  int
	// MaxConcurrent bounds the requests in progress of all callers.
	MaxConcurrent int
	// MaxConnections bounds the open connections of all callers; the last
	// sixteenth of it (at least 8) is kept for privileged callers.
	MaxConnections int
	// MaxConnectionsPerCaller and MaxConcurrentPerCaller bound one caller.
	MaxConnectionsPerCaller int
	MaxConcurrentPerCaller  int
	// BodyTimeout bounds the reading of a request body.
	BodyTimeout time.Duration
}

// Timeouts are the connection timeouts of the server (serve.go) and the
// shutdown grace, fixed when the Server is made.
type Timeouts struct {
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	// ShutdownGrace is how long Serve lets in-flight requests finish once
	// its context is done.
	ShutdownGrace time.Duration
}

// Defaults of the server's settings, used for a zero field.
var (
	DefaultLimits = Limits{
		MaxRequestBytes:         64 << 10,
		MaxCredentials:          32,
		MaxConcurrent:           256,
		MaxConnections:          1024,
		MaxConnectionsPerCaller: 32,
		MaxConcurrentPerCaller:  16,
		BodyTimeout:             2 * time.Second,
	}
	DefaultTimeouts = Timeouts{ReadTimeout: 5 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 60 * time.Second, ShutdownGrace: 10 * time.Second}
)

// Server serves the local API.
type Server struct {
	opts     Options
	cfg      Config // the timeouts; the limits as they were at NewServer
	limits   atomic.Pointer[Limits]
	inflight atomic.Int64 // requests holding an api.max_concurrent slot
	callers  *callers
	started  time.Time
	handler  http.Handler
}

// NewServer returns a Server. It panics if opts.Resolver is nil.
func NewServer(opts Options) *Server {
	if opts.Resolver == nil {
		panic("localapi.NewServer: nil Resolver")
	}
	cfg := Config{Limits: opts.Config.Limits.withDefaults(), Timeouts: opts.Config.Timeouts.withDefaults()}
	s := &Server{opts: opts, cfg: cfg, started: time.Now(),
		callers: newCallers(cfg.MaxConnections, cfg.MaxConnectionsPerCaller, cfg.MaxConcurrentPerCaller, opts.Log)}
	s.limits.Store(&cfg.Limits)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/resolve", s.serveResolve)
	mux.HandleFunc("POST /v1/check", s.serveCheck)
	mux.HandleFunc("GET /v1/status", s.serveStatus)
	mux.HandleFunc("POST /v1/doctor/stores", s.serveProbeStores)
	mux.HandleFunc("POST /v1/sync", s.serveSync)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, apitype.ClassNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	s.handler = s.guard(mux)
	return s
}

// SetLimits applies new limits to the server, serving or not. A zero field
// takes its default.
func (s *Server) SetLimits(l Limits) {
	l = l.withDefaults()
	s.limits.Store(&l)
	s.callers.setLimits(l.MaxConnections, l.MaxConnectionsPerCaller, l.MaxConcurrentPerCaller)
}

// Limits returns the limits in force, defaults filled in.
func (s *Server) Limits() Limits { return *s.lim() }

// lim returns the limits in force.
func (s *Server) lim() *Limits { return s.limits.Load() }

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxRequestBytes <= 0 {
		l.MaxRequestBytes = d.MaxRequestBytes
	}
	for _, f := range []struct{ v, dv *int }{{&l.MaxCredentials, &d.MaxCredentials}, {&l.MaxConcurrent, &d.MaxConcurrent}, {&l.MaxConnections, &d.MaxConnections},
		{&l.MaxConnectionsPerCaller, &d.MaxConnectionsPerCaller}, {&l.MaxConcurrentPerCaller, &d.MaxConcurrentPerCaller}} {
		if *f.v <= 0 {
			*f.v = *f.dv
		}
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = d.BodyTimeout
	}
	return l
}

func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts
	for _, f := range []struct{ v, dv *time.Duration }{{&t.ReadTimeout, &d.ReadTimeout}, {&t.WriteTimeout, &d.WriteTimeout}, {&t.IdleTimeout, &d.IdleTimeout}, {&t.ShutdownGrace, &d.ShutdownGrace}} {
		if *f.v <= 0 {
			*f.v = *f.dv
		}
	}
	return t
}

// Handler returns the API's handler, with its guards. Requests must carry an
// identity (localsock.ConnContext or localsock.WithIdentity).
func (s *Server) Handler() http.Handler { return s.handler }

// maxHeaderBytes bounds request headers; the API needs very few.
const maxHeaderBytes = 16 << 10

// guard applies the checks every request gets before routing.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if status, msg := badShape(r); status != 0 {
			class := apitype.ClassInvalidRequest
			if status == http.StatusForbidden {
				class = apitype.ClassForbidden
			}
			w.Header().Set("Connection", "close")
			writeError(w, status, class, msg)
			return
		}
		id, err := localsock.FromContext(r.Context())
		if err != nil || id == nil {
			s.opts.Log.Warn().Err(err).Msg("local API: caller could not be identified")
			writeError(w, http.StatusForbidden, apitype.ClassForbidden, "the caller could not be identified")
			return
		}
		if tc, ok := r.Context().Value(ctxConn{}).(*trackedConn); ok {
			// A named pipe is identified only now, at its first request.
			if why := tc.bind(id); why != "" {
				s.callers.logRefused(id, why)
				w.Header().Set("Connection", "close")
				w.Header().Set("Retry-After", "1")
				writeError(w, http.StatusServiceUnavailable, apitype.ClassOverloaded, why)
				return
			}
		}
		if !s.callers.begin(id) {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, apitype.ClassRateLimited,
				fmt.Sprintf("%s has %d requests in progress (api.max_concurrent_per_caller); retry shortly", id.Key(), s.lim().MaxConcurrentPerCaller))
			return
		}
		defer s.callers.end(id)
		// The handlers read the caller back from the connection's context
		// (callerOf): no copy of the request per request.
		next.ServeHTTP(w, r)
	})
}

// badShape refuses what the API's one client shape never sends, with the
// status to answer: a browser's headers (present, even empty), a body
// framed by Transfer-Encoding (net/http drops a Content-Length sent with
// it, so both together arrive here as Transfer-Encoding), and a request
// target other than a path (an absolute URI, or "*").
func badShape(r *http.Request) (int, string) {
	for _, h := range []string{"Origin", "Referer"} {
		if _, ok := r.Header[h]; ok {
			return http.StatusForbidden, "browser requests are refused (" + h + " header present)"
		}
	}
	if len(r.TransferEncoding) > 0 || r.Header.Get("Transfer-Encoding") != "" {
		return http.StatusBadRequest, "Transfer-Encoding is refused (with or without Content-Length): send the body with Content-Length only"
	}
	if !strings.HasPrefix(r.RequestURI, "/") || r.URL.IsAbs() || r.URL.Host != "" {
		return http.StatusBadRequest, "the request target must be a path (/v1/...), not an absolute URI"
	}
	return 0, ""
}

// slot takes one of the api.max_concurrent slots, answering 503 itself
// when none is free.
func (s *Server) slot(w http.ResponseWriter) (release func(), ok bool) {
	limit := s.lim().MaxConcurrent
	if s.inflight.Add(1) > int64(limit) {
		s.inflight.Add(-1)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, apitype.ClassOverloaded, fmt.Sprintf("more than %d requests in progress; retry shortly", limit))
		return nil, false
	}
	return func() { s.inflight.Add(-1) }, true
}

// admit refuses, before anything is read or taken, a caller that no policy
// rule matches.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, op resolve.Op) bool {
	if e := s.opts.Resolver.Admit(callerOf(r), op); e != nil {
		w.Header().Set("Connection", "close")
		refusal(w, e)
		return false
	}
	return true
}

// callerOf is the caller guard checked: the connection's identity,
// established once per connection (localsock.ConnContext).
func callerOf(r *http.Request) *localsock.Identity {
	id, err := localsock.FromContext(r.Context())
	if err != nil {
		return nil
	}
	return id
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"class":"`+string(apitype.ClassServerError)+`","message":"encoding the answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, class apitype.Class, msg string) {
	writeJSON(w, status, apitype.ErrorResponse{Error: apitype.Error{Class: class, Message: msg}})
}

// DecodeResolveRequest reads one ResolveRequest strictly: unknown fields,
// trailing data, a missing or oversized name list, duplicate names, and
// control characters are errors. Errors from r (such as
// *http.MaxBytesError) are returned wrapped.
func DecodeResolveRequest(r io.Reader, maxNames int) (apitype.ResolveRequest, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return apitype.ResolveRequest{}, fmt.Errorf("reading the request: %w", err)
	}
	req, ok := parseResolveFast(body)
	if !ok {
		if req, err = parseResolveStrict(body); err != nil {
			return req, err
		}
	}
	if len(req.Names) == 0 {
		return req, errors.New(`"names" must list at least one credential`)
	}
	if len(req.Names) > maxNames {
		return req, fmt.Errorf(`%w: %d names, at most %d per request`, errTooMany, len(req.Names), maxNames)
	}
	if err := checkText(req.RunID, apitype.MaxIDBytes); err != nil {
		return req, fmt.Errorf("run_id %w", err)
	}
	if err := checkText(req.FlowID, apitype.MaxIDBytes); err != nil {
		return req, fmt.Errorf("flow_id %w", err)
	}
	for i, n := range req.Names {
		if n == "" {
			return req, fmt.Errorf("names[%d] is empty", i)
		}
		if err := checkText(n, apitype.MaxNameBytes); err != nil {
			return req, fmt.Errorf("names[%d] %w", i, err)
		}
		// At most maxNames (32 by default): comparing pairs costs less
		// than a map, and allocates nothing.
		for j := range i {
			if req.Names[j] == n {
				return req, fmt.Errorf("names[%d]: %q is listed twice", i, n)
			}
		}
	}
	return req, nil
}

// parseResolveStrict decodes a ResolveRequest with encoding/json under
// strictjson's rules: keys exact and once each, nothing unknown, nothing
// after the object.
func parseResolveStrict(body []byte) (apitype.ResolveRequest, error) {
	var req apitype.ResolveRequest
	// JSON text is UTF-8 (RFC 8259 8.1); encoding/json would replace
	// invalid bytes with U+FFFD and serve, audit and send to CCP a run ID
	// other than the caller's. (The fast path takes ASCII only.)
	if !utf8.Valid(body) {
		return req, errors.New("invalid JSON: the request is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if errors.Is(err, io.EOF) {
			return req, errors.New("empty request body")
		}
		return req, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil && !isSyntaxErr(err) {
			return req, fmt.Errorf("invalid JSON: %w", err)
		}
		return req, errors.New("invalid JSON: data after the request object")
	}
	// encoding/json matches keys ignoring case and lets a later duplicate
	// win; keys are exact and once each here.
	if err := strictjson.Check(body, reflect.TypeFor[apitype.ResolveRequest](), strictjson.Options{}); err != nil {
		return apitype.ResolveRequest{}, fmt.Errorf("invalid JSON: %w", err)
	}
	return req, nil
}

var errTooMany = errors.New("too many credentials")

func isSyntaxErr(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF)
}

// checkText checks one string of a request; its error reads after the
// field's name.
func checkText(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("is longer than %d bytes", max)
	}
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return errors.New("contains a control character")
		}
	}
	return nil
}

// readRequest bounds, checks and decodes a request body, answering the
// client itself on failure.
func (s *Server) readRequest(w http.ResponseWriter, r *http.Request) (apitype.ResolveRequest, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, apitype.ClassInvalidRequest, "Content-Type must be application/json")
			return apitype.ResolveRequest{}, false
		}
	}
	// A short deadline for the body, from now (the end of the headers): a
	// body trickled in holds the caller's own request slot, not for long.
	lim := s.lim()
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(lim.BodyTimeout))
	body := http.MaxBytesReader(w, r.Body, lim.MaxRequestBytes)
	req, err := DecodeResolveRequest(body, lim.MaxCredentials)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.Is(err, os.ErrDeadlineExceeded) {
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusRequestTimeout, apitype.ClassInvalidRequest, fmt.Sprintf("the request body did not arrive within %v", lim.BodyTimeout))
			return req, false
		}
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, apitype.ClassInvalidRequest, fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
			return req, false
		}
		writeError(w, http.StatusBadRequest, apitype.ClassInvalidRequest, err.Error())
		return req, false
	}
	return req, true
}

// refusal answers a request-level refusal from the resolver.
func refusal(w http.ResponseWriter, e *resolve.Error) {
	status := http.StatusBadRequest
	switch e.Class {
	case apitype.ClassForbidden:
		status = http.StatusForbidden
	case apitype.ClassNeedsReenroll, apitype.ClassFeedStale:
		status = http.StatusServiceUnavailable
	case apitype.ClassRateLimited:
		status = http.StatusTooManyRequests
		secs := int((e.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	writeJSON(w, status, apitype.ErrorResponse{Error: *wireError(e)})
}

func wireError(e *resolve.Error) *apitype.Error {
	return &apitype.Error{Class: e.Class, Code: e.Code, Message: e.Message, CorrelationID: e.CorrelationID, Rule: e.Rule}
}

func (s *Server) serveResolve(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r, resolve.OpResolve) {
		return
	}
	req, ok := s.readRequest(w, r)
	if !ok {
		return
	}
	release, ok := s.slot(w)
	if !ok {
		return
	}
	defer release()
	res := s.opts.Resolver.Resolve(r.Context(), callerOf(r), resolve.Request{RunID: req.RunID, FlowID: req.FlowID, Names: req.Names, Op: resolve.OpResolve})
	defer res.Wipe()
	if res.Err != nil {
		refusal(w, res.Err)
		return
	}
	buf := encodeResolve(res)
	defer buf.wipe()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(buf.b)))
	w.WriteHeader(http.StatusOK)
	w.Write(buf.b)
}

func (s *Server) serveCheck(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r, resolve.OpCheck) {
		return
	}
	req, ok := s.readRequest(w, r)
	if !ok {
		return
	}
	release, ok := s.slot(w)
	if !ok {
		return
	}
	defer release()
	res := s.opts.Resolver.Resolve(r.Context(), callerOf(r), resolve.Request{RunID: req.RunID, FlowID: req.FlowID, Names: req.Names, Op: resolve.OpCheck})
	res.Wipe()
	if res.Err != nil {
		refusal(w, res.Err)
		return
	}
	out := apitype.CheckResponse{OK: true, Results: make(map[string]apitype.CheckResult, len(res.Items))}
	for _, it := range res.Items {
		if it.Err != nil {
			out.OK = false
			out.Results[it.Name] = apitype.CheckResult{Error: wireError(it.Err)}
			continue
		}
		out.Results[it.Name] = apitype.CheckResult{OK: true}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	var st apitype.Status
	if s.opts.Status != nil {
		st = s.opts.Status(r.Context())
	}
	if st.Version == "" {
		st.Version = version.Version
	}
	if st.StartedAt.IsZero() {
		st.StartedAt = s.started
	}
	if st.UptimeMS == 0 {
		st.UptimeMS = time.Since(st.StartedAt).Milliseconds()
	}
	if caller := callerOf(r); !caller.Privileged() {
		st = s.limitedStatus(caller, st)
	} else {
		st.Runtime = readRuntime()
	}
	writeJSON(w, http.StatusOK, st)
}

// limitedStatus is what an unprivileged caller may see of st: the agent's
// health, and the names of the credentials its rule grants. Applications,
// stores (CCP addresses, AppIDs), certificate serials, rejected deliveries,
// problems and hardening stay with the administrators.
func (s *Server) limitedStatus(caller *localsock.Identity, st apitype.Status) apitype.Status {
	out := apitype.Status{
		Version: st.Version, StartedAt: st.StartedAt, UptimeMS: st.UptimeMS, Socket: st.Socket, Ready: st.Ready,
		Limited:      true,
		Applications: []apitype.ApplicationStatus{}, Stores: []apitype.StoreStatus{},
		Credentials: []apitype.CredentialStatus{}, Rejected: []apitype.RejectedDelivery{},
	}
	if !st.Ready {
		out.Problems = []string{"the agent is not ready; an administrator sees why in credagent status"}
	}
	for _, c := range st.Credentials {
		if s.opts.Resolver.Grants(caller, c.Owner, c.Name) {
			out.Credentials = append(out.Credentials, apitype.CredentialStatus{Name: c.Name})
		}
	}
	return out
}

// serveSync polls the feed now and answers with the status after it. A
// poll is bounded work, one at a time, so any caller of the socket may ask.
func (s *Server) serveSync(w http.ResponseWriter, r *http.Request) {
	if s.opts.Sync == nil {
		writeError(w, http.StatusNotFound, apitype.ClassNotFound, "this agent has no feed configured (feed.urls)")
		return
	}
	if err := s.opts.Sync(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the feed poll did not finish: "+err.Error())
		return
	}
	s.serveStatus(w, r)
}

// serveProbeStores runs the store probes for `credagent doctor`. They make
// real CCP requests with the applications' certificates, so only a
// privileged caller may ask: root or the agent's own user, SYSTEM or an
// Administrator.
func (s *Server) serveProbeStores(w http.ResponseWriter, r *http.Request) {
	if s.opts.ProbeStores == nil {
		writeError(w, http.StatusNotFound, apitype.ClassNotFound, "store probes are not available in this agent")
		return
	}
	if !callerOf(r).Privileged() {
		writeError(w, http.StatusForbidden, apitype.ClassForbidden, "store probes need root or an administrator")
		return
	}
	writeJSON(w, http.StatusOK, apitype.ProbeResponse{Results: s.opts.ProbeStores(r.Context())})
}
