// Package client is the Go client of the agent's local API, for flow runners
// and the credagent CLI.
//
//	c := client.New(client.DefaultSocket())
//	res, err := c.Resolve(ctx, runID, flowID, "sap-prod", "db-report")
//	if err != nil { ... } // the whole request failed or was refused: apitype.IsRateLimited(err) says retry later
//	defer res.Wipe()
//	for _, cr := range res.Credentials {
//		if cr.Err != nil { ... continue } // this name failed, others may not have
//		use(cr.Username, cr.Password.Reveal())
//	}
//
// Passwords arrive as secret.Secret, decoded straight from the response
// buffer, which is zeroed afterwards. A Client is safe for concurrent use and
// should be reused.
package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/secret"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/credagent/credagent/platform/paths"
)

// maxResponseBytes bounds an answer read from the agent.
const maxResponseBytes = 16 << 20

// DefaultSocket is this OS's default socket path or pipe name.
func DefaultSocket() string { return paths.Default().Socket }

// Client talks to one agent.
type Client struct {
	path string
	pool *pool
}

// New returns a client for the agent listening at socketPath.
func New(socketPath string) *Client {
	return &Client{path: socketPath, pool: &pool{dial: func(ctx context.Context) (net.Conn, error) {
		return localsock.Dial(ctx, socketPath)
	}}}
}

// Close releases idle connections. The Client stays usable.
func (c *Client) Close() { c.pool.closeIdle() }

// Error is a failure answered by the agent, for a whole request or for one
// name.
type Error struct {
	// HTTPStatus is the answer's status for a request-level error, 0 for a
	// per-name error.
	HTTPStatus int
	// Class is the wire name of the failure; a newer agent may send one
	// that apitype does not list.
	Class         apitype.Class
	Code          string
	Message       string
	CorrelationID string
	Rule          string
	// RetryAfter is set with 429 and 503.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := "credagent: " + string(e.Class)
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.CorrelationID != "" {
		s += " [correlation " + e.CorrelationID + "]"
	}
	return s
}

// ErrorClass returns e.Class: *Error is an apitype.Classed error, so
// apitype.ClassOf, apitype.IsForbidden and apitype.IsRateLimited (the
// caller's limit or the agent's capacity: retry after RetryAfter) see it.
func (e *Error) ErrorClass() apitype.Class { return e.Class }

func fromWire(e *apitype.Error) *Error {
	if e == nil {
		return &Error{Class: apitype.ClassServerError, Message: "empty error"}
	}
	return &Error{Class: e.Class, Code: e.Code, Message: e.Message, CorrelationID: e.CorrelationID, Rule: e.Rule}
}

// Credential is one name's answer.
type Credential struct {
	Name       string
	Username   string
	Password   secret.Secret
	Properties map[string]string
	// FromCache, Stale and CacheAge say whether the agent answered from its
	// cache, past the cache's TTL because CCP was unreachable, and how old
	// the value is.
	FromCache               bool
	Stale                   bool
	CacheAge                time.Duration
	PasswordChangeInProcess bool
	// Err is set when this name failed; the other fields are then empty.
	Err *Error
}

// Resolution is the answer to Resolve: one Credential per name, in the
// order asked.
type Resolution struct {
	Credentials []Credential
}

// Get returns the credential called name, or nil.
func (r *Resolution) Get(name string) *Credential {
	for i := range r.Credentials {
		if r.Credentials[i].Name == name {
			return &r.Credentials[i]
		}
	}
	return nil
}

// Err returns the first per-name error, or nil if every name resolved.
func (r *Resolution) Err() error {
	for i := range r.Credentials {
		if e := r.Credentials[i].Err; e != nil {
			return fmt.Errorf("%s: %w", r.Credentials[i].Name, e)
		}
	}
	return nil
}

// Wipe zeroes every password.
func (r *Resolution) Wipe() {
	for i := range r.Credentials {
		r.Credentials[i].Password.Wipe()
	}
}

// wirePassword decodes a password from the response buffer into its own
// buffer, without going through a Go string.
type wirePassword struct{ s secret.Secret }

func (p *wirePassword) UnmarshalJSON(b []byte) error {
	pw, err := apitype.DecodePassword(b)
	if err != nil {
		return err
	}
	p.s = secret.New(pw)
	return nil
}

type wireItem struct {
	Password *wirePassword `json:"password"`
	apitype.Credential
	Error *apitype.Error `json:"error"`
}

// Resolve asks for names. A non-nil error means the whole request failed
// (refused, rate-limited, invalid, agent unreachable); otherwise each
// Credential has its own result. The caller must Wipe the Resolution.
func (c *Client) Resolve(ctx context.Context, runID, flowID string, names ...string) (*Resolution, error) {
	body, err := c.post(ctx, "/v1/resolve", runID, flowID, names)
	if err != nil {
		return nil, err
	}
	defer clear(body)
	return decodeResolution(body, names)
}

// decodeResolution reads /v1/resolve's answer for names: the usual answer
// by parseResolveAnswerFast, anything else by decodeResolutionSlow.
func decodeResolution(body []byte, names []string) (*Resolution, error) {
	if res, ok := parseResolveAnswerFast(body, names); ok {
		return res, nil
	}
	return decodeResolutionSlow(body, names)
}

// decodeResolutionSlow reads any answer with encoding/json.
func decodeResolutionSlow(body []byte, names []string) (*Resolution, error) {
	var wire struct {
		Results map[string]*wireItem `json:"results"`
	}
	if err := json.Unmarshal(body, &wire); err != nil {
		for _, it := range wire.Results {
			if it != nil && it.Password != nil {
				it.Password.s.Wipe()
			}
		}
		return nil, fmt.Errorf("credagent: decoding the answer: %w", err)
	}
	res := &Resolution{Credentials: make([]Credential, 0, len(names))}
	for _, n := range names {
		it := wire.Results[n]
		cr := Credential{Name: n}
		switch {
		case it == nil:
			cr.Err = &Error{Class: apitype.ClassServerError, Message: "the agent did not answer for this name"}
		case it.Error != nil:
			cr.Err = fromWire(it.Error)
		default:
			if it.Password != nil {
				cr.Password = it.Password.s
			}
			cr.Username, cr.Properties = it.Username, it.Properties
			cr.FromCache, cr.Stale, cr.CacheAge = it.FromCache, it.Stale, time.Duration(it.CacheAgeMS)*time.Millisecond
			cr.PasswordChangeInProcess = it.PasswordChangeInProcess
		}
		res.Credentials = append(res.Credentials, cr)
	}
	return res, nil
}

// Check asks the agent to resolve names without returning them. It returns
// one error per name (nil for success); a non-nil second result means the
// whole request failed.
func (c *Client) Check(ctx context.Context, runID, flowID string, names ...string) (map[string]error, error) {
	body, err := c.post(ctx, "/v1/check", runID, flowID, names)
	if err != nil {
		return nil, err
	}
	var wire apitype.CheckResponse
	if err := json.Unmarshal(body, &wire); err != nil {
		return nil, fmt.Errorf("credagent: decoding the answer: %w", err)
	}
	out := make(map[string]error, len(names))
	for _, n := range names {
		r, ok := wire.Results[n]
		switch {
		case !ok:
			out[n] = &Error{Class: apitype.ClassServerError, Message: "the agent did not answer for this name"}
		case r.Error != nil:
			out[n] = fromWire(r.Error)
		case r.OK:
			out[n] = nil
		default:
			out[n] = &Error{Class: apitype.ClassServerError, Message: "no result"}
		}
	}
	return out, nil
}

// Status returns the agent's status.
func (c *Client) Status(ctx context.Context) (*apitype.Status, error) {
	return c.status(ctx, http.MethodGet, "/v1/status", nil)
}

// status makes a request whose answer is the agent's status.
func (c *Client) status(ctx context.Context, method, path string, body []byte) (*apitype.Status, error) {
	b, err := c.do(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	var st apitype.Status
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("credagent: decoding status: %w", err)
	}
	return &st, nil
}

func (c *Client) post(ctx context.Context, path, runID, flowID string, names []string) ([]byte, error) {
	return c.do(ctx, http.MethodPost, path, encodeRequest(runID, flowID, names))
}

// encodeRequest writes a ResolveRequest as json.Marshal does, the usual
// printable ASCII strings by hand and anything else through encoding/json.
func encodeRequest(runID, flowID string, names []string) []byte {
	n := 40 + len(runID) + len(flowID)
	for _, name := range names {
		n += len(name) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, `{"run_id":`...)
	b = apitype.AppendString(b, runID)
	b = append(b, `,"flow_id":`...)
	b = apitype.AppendString(b, flowID)
	if names == nil {
		return append(b, `,"names":null}`...)
	}
	b = append(b, `,"names":[`...)
	for i, name := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = apitype.AppendString(b, name)
	}
	return append(b, "]}"...)
}

// do sends a request and returns the body of a 200 answer, read into a
// buffer the caller may wipe.
func (c *Client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	resp, b, err := c.send(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var er apitype.ErrorResponse
		e := &Error{HTTPStatus: resp.StatusCode, Class: apitype.ClassServerError, Message: resp.Status}
		if json.Unmarshal(b, &er) == nil && er.Error.Class != "" {
			e = fromWire(&er.Error)
			e.HTTPStatus = resp.StatusCode
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return nil, e
	}
	return b, nil
}

// Sync asks the agent to poll its feed now (POST /v1/sync) and returns its
// status after the poll.
func (c *Client) Sync(ctx context.Context) (*apitype.Status, error) {
	return c.status(ctx, http.MethodPost, "/v1/sync", []byte("{}"))
}

// ProbeStores asks the agent to probe each of its CCP stores with the
// application certificate it holds (POST /v1/doctor/stores). Only root or an
// administrator may.
func (c *Client) ProbeStores(ctx context.Context) ([]apitype.ProbeResult, error) {
	body, err := c.do(ctx, http.MethodPost, "/v1/doctor/stores", []byte("{}"))
	if err != nil {
		return nil, err
	}
	var pr apitype.ProbeResponse
	if err := json.Unmarshal(body, &pr); err != nil {
		return nil, fmt.Errorf("credagent: decoding store probes: %w", err)
	}
	return pr.Results, nil
}
