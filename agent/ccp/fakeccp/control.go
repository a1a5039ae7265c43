package fakeccp

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Faults are injected into Accounts requests. A rate is a probability in
// [0, 1]; for Latency and Status a rate of 0 means every request.
type Faults struct {
	// Latency delays requests.
	Latency     time.Duration
	LatencyRate float64
	// Status answers requests with this HTTP status: in CCP's JSON
	// envelope when ErrorCode is set, else with an IIS HTML page.
	Status     int
	StatusRate float64
	ErrorCode  string
	ErrorMsg   string
	// ResetRate drops that share of requests with a TCP reset.
	ResetRate float64
	// VaultDown answers every request that parses with 400 APPAP007E.
	VaultDown bool
}

func (f *Faults) active() bool {
	return f.Latency > 0 || f.Status != 0 || f.ResetRate > 0
}

func (f Faults) validate() error {
	var errs []error
	for _, r := range []struct {
		name string
		v    float64
	}{{"latencyRate", f.LatencyRate}, {"statusRate", f.StatusRate}, {"resetRate", f.ResetRate}} {
		if !(r.v >= 0 && r.v <= 1) {
			errs = append(errs, fmt.Errorf("%s %v is not in [0, 1]", r.name, r.v))
		}
	}
	if f.Latency < 0 || f.Latency > 10*time.Minute {
		errs = append(errs, fmt.Errorf("latency %v is not in [0, 10m]", f.Latency))
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		errs = append(errs, fmt.Errorf("status %d is not an HTTP status", f.Status))
	}
	return errors.Join(errs...)
}

// faultsJSON is Faults on the admin API: latency as a Go duration string.
type faultsJSON struct {
	Latency     string  `json:"latency,omitempty"`
	LatencyRate float64 `json:"latencyRate,omitempty"`
	Status      int     `json:"status,omitempty"`
	StatusRate  float64 `json:"statusRate,omitempty"`
	ErrorCode   string  `json:"errorCode,omitempty"`
	ErrorMsg    string  `json:"errorMsg,omitempty"`
	ResetRate   float64 `json:"resetRate,omitempty"`
	VaultDown   bool    `json:"vaultDown,omitempty"`
}

// MarshalJSON writes latency as a duration string ("250ms").
func (f Faults) MarshalJSON() ([]byte, error) {
	j := faultsJSON{"", f.LatencyRate, f.Status, f.StatusRate, f.ErrorCode, f.ErrorMsg, f.ResetRate, f.VaultDown}
	if f.Latency != 0 {
		j.Latency = f.Latency.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads latency as a duration string or a number of
// milliseconds.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j struct {
		faultsJSON
		Latency json.RawMessage `json:"latency"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = Faults{0, j.LatencyRate, j.Status, j.StatusRate, j.ErrorCode, j.ErrorMsg, j.ResetRate, j.VaultDown}
	if len(j.Latency) > 0 && string(j.Latency) != "null" {
		var s string
		if json.Unmarshal(j.Latency, &s) == nil {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("latency: %w", err)
			}
			f.Latency = d
		} else {
			ms, err := strconv.ParseFloat(string(j.Latency), 64)
			if err != nil {
				return fmt.Errorf("latency: want a duration string or milliseconds")
			}
			f.Latency = time.Duration(ms * float64(time.Millisecond))
		}
	}
	return nil
}

// SetFaults replaces the faults in force.
func (s *Server) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("fakeccp: SetFaults: %w", err)
	}
	s.faults.Store(&f)
	return nil
}

// CurrentFaults returns the faults in force.
func (s *Server) CurrentFaults() Faults { return *s.faults.Load() }

// Counters count what the fake answered since it started or since
// ResetCounters.
type Counters struct {
	// Requests that reached the fake over the TLS listener.
	Requests uint64 `json:"requests"`
	// Connections accepted (TCP), whether or not the handshake succeeded.
	Connections uint64 `json:"connections"`
	// Resets injected by ResetRate.
	Resets uint64 `json:"resets"`
	// ByStatus counts answers per HTTP status.
	ByStatus map[int]uint64 `json:"byStatus"`
	// ByCode counts answers per CCP error code, "OK" for successes, and
	// "IIS 404.0", "IIS 403.7" ... for IIS pages.
	ByCode map[string]uint64 `json:"byCode"`
}

type counters struct {
	requests, connections, resets atomic.Uint64
	status                        [600]atomic.Uint64
	codes                         sync.Map // string -> *atomic.Uint64
}

func (c *counters) count(status int, code string) {
	if status >= 0 && status < len(c.status) {
		c.status[status].Add(1)
	}
	if code == "" {
		return
	}
	v, ok := c.codes.Load(code)
	if !ok {
		v, _ = c.codes.LoadOrStore(code, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

// Counters returns a snapshot of the counters.
func (s *Server) Counters() Counters {
	c := &s.counters
	out := Counters{
		Requests: c.requests.Load(), Connections: c.connections.Load(), Resets: c.resets.Load(),
		ByStatus: map[int]uint64{}, ByCode: map[string]uint64{},
	}
	for i := range c.status {
		if n := c.status[i].Load(); n > 0 {
			out.ByStatus[i] = n
		}
	}
	c.codes.Range(func(k, v any) bool {
		if n := v.(*atomic.Uint64).Load(); n > 0 {
			out.ByCode[k.(string)] = n
		}
		return true
	})
	return out
}

// ResetCounters sets every counter to zero.
func (s *Server) ResetCounters() {
	c := &s.counters
	c.requests.Store(0)
	c.connections.Store(0)
	c.resets.Store(0)
	for i := range c.status {
		c.status[i].Store(0)
	}
	c.codes.Range(func(_, v any) bool { v.(*atomic.Uint64).Store(0); return true })
}

// AuditRecord is one request as the fake saw it. It never holds a
// password.
type AuditRecord struct {
	Time  time.Time `json:"time"`
	AppID string    `json:"appID"`
	// Query is the criteria as CCP echoes them ("Safe=S;Folder=Root;Object=O").
	Query  string `json:"query"`
	Reason string `json:"reason,omitempty"`
	Status int    `json:"status"`
	// Code is the CCP error code, "OK", or an IIS page ("IIS 403.7").
	Code string `json:"code"`
	// Object is the account returned, Safe\Folder\Name, on success.
	Object string `json:"object,omitempty"`
	// ClientSerial is the client certificate's serial, lower-case hex, or
	// empty when none was presented.
	ClientSerial string `json:"clientSerial,omitempty"`
	RemoteAddr   string `json:"remoteAddr"`
}

// auditLog is a ring of the most recent records.
type auditLog struct {
	mu   sync.Mutex
	buf  []AuditRecord
	next int
	full bool
}

func (l *auditLog) init(n int) {
	if n > 0 {
		l.buf = make([]AuditRecord, n)
	}
}

func (l *auditLog) add(r AuditRecord) {
	l.mu.Lock()
	if len(l.buf) > 0 {
		l.buf[l.next] = r
		l.next++
		if l.next == len(l.buf) {
			l.next, l.full = 0, true
		}
	}
	l.mu.Unlock()
}

// Audit returns the recorded requests, oldest first (at most
// Options.AuditSize of the most recent).
func (s *Server) Audit() []AuditRecord {
	l := &s.audit
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []AuditRecord
	if l.full {
		out = append(out, l.buf[l.next:]...)
	}
	return append(out, l.buf[:l.next]...)
}

// ResetAudit forgets the recorded requests.
func (s *Server) ResetAudit() {
	l := &s.audit
	l.mu.Lock()
	clear(l.buf)
	l.next, l.full = 0, false
	l.mu.Unlock()
}
