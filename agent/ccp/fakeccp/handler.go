package fakeccp

import (
	"crypto/tls"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

var (
	hdrJSON      = []string{"application/json; charset=utf-8"}
	hdrHTML      = []string{"text/html"}
	hdrServer    = []string{"Microsoft-IIS/10.0"}
	hdrPoweredBy = []string{"ASP.NET"}
	hdrNoCache   = []string{"no-cache"}
)

// result is what one request came to, for counters, audit and logs.
type result struct {
	status int
	code   string
	appID  string
	query  string
	reason string
	object string
}

func (s *Server) serveAccounts(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.counters.requests.Add(1)
	ci := s.conn(r)
	res := s.handle(w, r, ci)
	s.counters.count(res.status, res.code)
	if s.opts.AuditSize > 0 {
		s.audit.add(AuditRecord{
			Time: start, AppID: res.appID, Query: res.query, Reason: res.reason,
			Status: res.status, Code: res.code, Object: res.object,
			ClientSerial: ci.serial, RemoteAddr: ci.addr.String(),
		})
	}
	if e := s.log.Debug(); e.Enabled() {
		// Never the query string: only what identifies the call.
		e.Str("app_id", res.appID).Int("status", res.status).Str("code", res.code).
			Str("client_serial", ci.serial).Str("remote", ci.addr.String()).
			Dur("took", time.Since(start)).Msg("fakeccp: request")
	}
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request, ci *connInfo) result {
	h := w.Header()
	h["Server"] = hdrServer
	h["X-Powered-By"] = hdrPoweredBy

	if f := s.faults.Load(); f.active() {
		if f.ResetRate > 0 && rand.Float64() < f.ResetRate {
			s.counters.resets.Add(1)
			reset(w)
			return result{status: 0, code: "reset"}
		}
		if f.Latency > 0 && (f.LatencyRate == 0 || rand.Float64() < f.LatencyRate) {
			t := time.NewTimer(f.Latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
			}
		}
		if f.Status != 0 && (f.StatusRate == 0 || rand.Float64() < f.StatusRate) {
			if f.ErrorCode != "" {
				return s.writeError(w, &ccpError{f.Status, f.ErrorCode, f.ErrorMsg}, result{})
			}
			return s.writePage(w, statusPage(f.Status))
		}
	}

	if len(r.URL.Path)+len(r.URL.RawQuery) > s.opts.MaxURLBytes {
		return s.writePage(w, pageURLTooLong)
	}
	p := r.URL.Path
	if len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	if !strings.EqualFold(p, s.accounts) {
		return s.writePage(w, pageNotFound)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h["Allow"] = []string{"GET"}
		return s.writePage(w, pageMethodNotAllowed)
	}
	if ci.page != nil {
		return s.writePage(w, *ci.page)
	}

	req, perr := s.parse(r.URL.RawQuery)
	res := result{appID: req.AppID, query: req.Query, reason: req.Reason}
	if perr != nil {
		return s.writeError(w, perr, res)
	}
	if f := s.faults.Load(); f.VaultDown {
		return s.writeError(w, errVaultDown, res)
	}
	ap := s.w.apps[strings.ToLower(req.AppID)]
	if ap == nil {
		return s.writeError(w, errAppNotDefined(req.AppID), res)
	}
	addr := ci.addr
	if s.w.settings.TrustForwardedFor {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			if a, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
				addr = a.Unmap()
			}
		}
	}
	if e := s.w.authenticate(ap, ci.cert, ci.serial, addr); e != nil {
		return s.writeError(w, e, res)
	}
	found, ferr := s.w.find(ap, req)
	if ferr != nil {
		return s.writeError(w, ferr, res)
	}
	switch len(found) {
	case 0:
		return s.writeError(w, errNotFound(req.Query), res)
	case 1:
	default:
		return s.writeError(w, errTooMany(req.Query, found[0].describe(), found[1].describe()), res)
	}
	a := found[0]
	res.object = a.path
	st := a.state.Load()
	if st.changing && req.FailOnChange {
		return s.writeError(w, errChanging(a.name), res)
	}
	h["Content-Type"] = hdrJSON
	h["Cache-Control"] = hdrNoCache
	h["Content-Length"] = st.clen
	w.WriteHeader(http.StatusOK)
	w.Write(st.body)
	res.status, res.code = http.StatusOK, codeOK
	return res
}

func (s *Server) writeError(w http.ResponseWriter, e *ccpError, res result) result {
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Cache-Control"] = hdrNoCache
	w.WriteHeader(e.status)
	w.Write(e.body())
	res.status, res.code = e.status, e.code
	return res
}

func (s *Server) writePage(w http.ResponseWriter, p iisPage) result {
	body, ok := s.pageCache[p.code]
	if !ok {
		body = p.html()
	}
	w.Header()["Content-Type"] = hdrHTML
	w.WriteHeader(p.status)
	w.Write(body)
	return result{status: p.status, code: p.code}
}

// reset drops the connection with a TCP RST where it can (HTTP/1.1), or
// aborts the stream (HTTP/2).
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	c, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	var nc net.Conn = c
	if tc, ok := c.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if tcp, ok := nc.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	c.Close()
}

// parsedQuery is a cached parse of a raw query string.
type parsedQuery struct {
	req *Request
	err *ccpError
}

// parseCacheMax bounds the parse cache; it is cleared when full.
const parseCacheMax = 4096

// parse parses a raw query, caching the result: clients repeat the same
// few queries, and parsing is a visible share of a request's cost.
func (s *Server) parse(raw string) (*Request, *ccpError) {
	if v, ok := s.parseCache.Load(raw); ok {
		p := v.(parsedQuery)
		return p.req, p.err
	}
	req, err := parseQuery(raw, s.w.settings.QueryFolderDefault)
	if len(raw) <= 1024 {
		if s.parseCacheLen.Add(1) > parseCacheMax {
			s.parseCache.Clear()
			s.parseCacheLen.Store(0)
		}
		s.parseCache.Store(raw, parsedQuery{&req, err})
	}
	return &req, err
}
