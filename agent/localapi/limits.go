package localapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/rs/zerolog"
)

// callers bounds what each caller (localsock.Identity.Key: a uid or a SID)
// may hold: its open connections and its requests in progress, and all
// open connections together, with the last part of that kept for
// privileged callers. A caller holding thousands of keep-alive connections
// is refused at accept and costs the agent no descriptor; root's own
// `credagent resolve` still gets in.
type callers struct {
	maxConns, reserve    int
	perCallerConns       int
	perCallerConcurrency int
	log                  zerolog.Logger

	mu     sync.Mutex
	total  int
	m      map[string]*callerCount
	logged map[string]*refusedLog
}

type callerCount struct{ conns, inflight int }

// refusedLog rate-limits the operational log of refused connections: one
// line per caller per minute, with the count of those not logged.
type refusedLog struct {
	at     time.Time
	missed int
}

func newCallers(maxConns, perCallerConns, perCallerConcurrency int, log zerolog.Logger) *callers {
	return &callers{
		maxConns: maxConns, reserve: max(maxConns/16, 8),
		perCallerConns: perCallerConns, perCallerConcurrency: perCallerConcurrency,
		log: log, m: map[string]*callerCount{}, logged: map[string]*refusedLog{},
	}
}

// setLimits applies new limits; what is open or in progress keeps its place.
func (c *callers) setLimits(maxConns, perCallerConns, perCallerConcurrency int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxConns, c.reserve = maxConns, max(maxConns/16, 8)
	c.perCallerConns, c.perCallerConcurrency = perCallerConns, perCallerConcurrency
}

func (c *callers) get(key string) *callerCount {
	n := c.m[key]
	if n == nil {
		n = &callerCount{}
		c.m[key] = n
	}
	return n
}

func (c *callers) put(key string, n *callerCount) {
	if n.conns == 0 && n.inflight == 0 {
		delete(c.m, key)
	}
}

// openConn admits one more connection of id, or says why not.
func (c *callers) openConn(id *localsock.Identity) string {
	key, priv := id.Key(), id.Privileged()
	c.mu.Lock()
	defer c.mu.Unlock()
	limit := c.maxConns - c.reserve
	if priv {
		limit = c.maxConns
	}
	if c.total >= limit {
		return fmt.Sprintf("the agent has %d connections open; retry shortly", c.total)
	}
	n := c.get(key)
	if !priv && n.conns >= c.perCallerConns {
		return fmt.Sprintf("%s already has %d connections open (api.max_connections_per_caller); reuse them", key, n.conns)
	}
	n.conns++
	c.total++
	return ""
}

func (c *callers) closeConn(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.m[key]; n != nil && n.conns > 0 {
		n.conns--
		c.total--
		c.put(key, n)
	}
}

// begin admits one more request in progress of id. Privileged callers are
// not capped here: they are bounded by their connections.
func (c *callers) begin(id *localsock.Identity) bool {
	key := id.Key()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.get(key)
	if !id.Privileged() && n.inflight >= c.perCallerConcurrency {
		c.put(key, n)
		return false
	}
	n.inflight++
	return true
}

func (c *callers) end(id *localsock.Identity) {
	key := id.Key()
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.m[key]; n != nil && n.inflight > 0 {
		n.inflight--
		c.put(key, n)
	}
}

// logRefused logs a refused connection, once per caller per minute.
func (c *callers) logRefused(id *localsock.Identity, why string) {
	key := id.Key()
	now := time.Now()
	c.mu.Lock()
	l := c.logged[key]
	if l != nil && now.Sub(l.at) < time.Minute {
		l.missed++
		c.mu.Unlock()
		return
	}
	missed := 0
	if l != nil {
		missed = l.missed
	}
	if len(c.logged) >= 4096 {
		for k, v := range c.logged {
			if now.Sub(v.at) >= time.Minute {
				delete(c.logged, k)
			}
		}
	}
	c.logged[key] = &refusedLog{at: now}
	c.mu.Unlock()
	c.log.Warn().Str("caller", id.String()).Int("refused_since_last_logged", missed).Str("reason", why).
		Msg("local API: connection refused (logged at most once a minute per caller)")
}

// limitListener applies the connection limits at accept, where the kernel
// names the caller (localsock.PeerCred). Where it cannot (a named pipe
// before its first read), the connection is bound at its first request.
type limitListener struct {
	net.Listener
	cs *callers
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, cs: l.cs}
		if id, err := localsock.PeerCred(c); err == nil {
			if why := tc.bind(id); why != "" {
				l.cs.logRefused(id, why)
				refuseConn(c, why)
				continue
			}
		}
		return tc, nil
	}
}

// refuseConn answers a refused connection with a 503 and closes it. The
// write cannot block for long: the connection is new and its send buffer
// empty.
func refuseConn(c net.Conn, why string) {
	b, _ := json.Marshal(apitype.ErrorResponse{Error: apitype.Error{Class: apitype.ClassOverloaded, Message: why}})
	body := string(b) + "\n"
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	c.Close()
}

// trackedConn is an admitted connection; closing it gives its place back.
type trackedConn struct {
	net.Conn
	cs *callers

	mu     sync.Mutex
	key    string
	bound  bool
	closed bool
}

// bind counts the connection against id, once. It returns why the
// connection is refused, or "".
func (t *trackedConn) bind(id *localsock.Identity) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bound || t.closed {
		return ""
	}
	if why := t.cs.openConn(id); why != "" {
		return why
	}
	t.key, t.bound = id.Key(), true
	return ""
}

func (t *trackedConn) Close() error {
	t.mu.Lock()
	if t.bound && !t.closed {
		t.cs.closeConn(t.key)
	}
	t.closed = true
	t.mu.Unlock()
	return t.Conn.Close()
}

// NetConn returns the connection underneath, as crypto/tls's does.
func (t *trackedConn) NetConn() net.Conn { return t.Conn }

type ctxConn struct{}

// connContext attaches the caller's identity (localsock.ConnContext, from
// the transport's own connection) and the tracked connection.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*trackedConn); ok {
		ctx = localsock.ConnContext(ctx, tc.Conn)
		return context.WithValue(ctx, ctxConn{}, tc)
	}
	return localsock.ConnContext(ctx, c)
}
