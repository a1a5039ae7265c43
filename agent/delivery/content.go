package delivery

import (
	"bytes"
	"crypto/ecdh"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"reflect"
	"strings"

	"github.com/credagent/credagent/agent/secret"
	"github.com/credagent/credagent/agent/strictjson"
)

// MaxChain bounds the certificates of an application's chain.
const MaxChain = 8

// Content is what a delivery carries: *Application, *GroupKey, *Store,
// *Credential or *Revoke.
type Content interface {
	Kind() Kind
	marshal() ([]byte, error)
	validate() error
}

var (
	_ Content = (*Application)(nil)
	_ Content = (*GroupKey)(nil)
	_ Content = (*Store)(nil)
	_ Content = (*Credential)(nil)
	_ Content = (*Revoke)(nil)
)

// Application is the sealed content of an application delivery; the AppID
// is the delivery's target.
type Application struct {
	Chain      [][]byte      // DER certificates, leaf first
	PrivateKey secret.Secret // PKCS#8 DER
}

// Kind implements Content.
func (*Application) Kind() Kind { return KindApplication }

type wireApplication struct {
	Chain      []string  `json:"chain"`
	PrivateKey b64Secret `json:"private_key"`
}

func (a *Application) marshal() ([]byte, error) {
	w := wireApplication{PrivateKey: b64Secret{a.PrivateKey}}
	for _, c := range a.Chain {
		w.Chain = append(w.Chain, b64.EncodeToString(c))
	}
	return json.Marshal(w)
}

func (a *Application) validate() error {
	if len(a.Chain) == 0 || len(a.Chain) > MaxChain {
		return fmt.Errorf("%w: chain of %d certificates, want 1 to %d", ErrInvalid, len(a.Chain), MaxChain)
	}
	if a.PrivateKey.IsZero() {
		return fmt.Errorf("%w: no private key", ErrInvalid)
	}
	return nil
}

// GroupKey is the sealed content of a group-key delivery: the group's P-256
// private key; the group name is the delivery's target.
type GroupKey struct {
	PrivateKey secret.Secret // the 32-byte big-endian scalar
}

// Kind implements Content.
func (*GroupKey) Kind() Kind { return KindGroupKey }

type wireGroupKey struct {
	PrivateKey b64Secret `json:"private_key"`
}

func (g *GroupKey) marshal() ([]byte, error) {
	return json.Marshal(wireGroupKey{b64Secret{g.PrivateKey}})
}

func (g *GroupKey) validate() error {
	_, err := g.Key()
	return err
}

// Key returns the group's private key.
func (g *GroupKey) Key() (*ecdh.PrivateKey, error) {
	k, err := ecdh.P256().NewPrivateKey(g.PrivateKey.Reveal())
	if err != nil {
		return nil, fmt.Errorf("%w: group key is not a P-256 private key", ErrInvalid)
	}
	return k, nil
}

// Store is the content of a store delivery: a CCP endpoint. The store name
// is the delivery's target.
type Store struct {
	DisplayName          string   `json:"display_name,omitempty"`
	Servers              []string `json:"servers"`
	Path                 string   `json:"path,omitempty"` // default /AIMWebService
	AppID                string   `json:"app_id"`
	Safe                 string   `json:"safe,omitempty"`
	Folder               string   `json:"folder,omitempty"`
	CABundle             string   `json:"ca_bundle,omitempty"` // PEM certificates
	Pins                 []string `json:"pins,omitempty"`      // base64 SHA-256 of SPKI
	Proxy                string   `json:"proxy,omitempty"`
	NoProxy              []string `json:"no_proxy,omitempty"`
	TLSMaxVersion        string   `json:"tls_max_version,omitempty"` // "1.2" or "1.3"
	HealthObject         string   `json:"health_object,omitempty"`
	CacheTTLSeconds      int64    `json:"cache_ttl_seconds,omitempty"`
	CacheMaxStaleSeconds int64    `json:"cache_max_stale_seconds,omitempty"`
}

// Kind implements Content.
func (*Store) Kind() Kind { return KindStore }

func (s *Store) marshal() ([]byte, error) { return json.Marshal(s) }

// Limits of a store's lists and durations.
const (
	MaxServers      = 16
	MaxPins         = 16
	MaxNoProxy      = 64
	MaxCacheSeconds = 30 * 24 * 3600
)

func (s *Store) validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: store: %s", ErrInvalid, fmt.Sprintf(f, a...)) }
	if len(s.Servers) == 0 || len(s.Servers) > MaxServers {
		return bad("want 1 to %d servers, got %d", MaxServers, len(s.Servers))
	}
	for _, u := range s.Servers {
		if err := checkURL(u, "https"); err != nil {
			return bad("server %q: %v", u, err)
		}
	}
	if s.Path != "" && (!strings.HasPrefix(s.Path, "/") || strings.ContainsAny(s.Path, "?# ") || !printable(s.Path)) {
		return bad("path %q: want an absolute path", s.Path)
	}
	if err := checkName(s.AppID); err != nil {
		return bad("app_id: %v", err)
	}
	for f, v := range map[string]string{"display_name": s.DisplayName, "safe": s.Safe, "folder": s.Folder, "health_object": s.HealthObject} {
		if len(v) > 256 || !printable(v) {
			return bad("%s: at most 256 printable characters", f)
		}
	}
	if s.CABundle != "" {
		if err := checkPEMCerts([]byte(s.CABundle)); err != nil {
			return bad("ca_bundle: %v", err)
		}
	}
	if len(s.Pins) > MaxPins {
		return bad("more than %d pins", MaxPins)
	}
	for _, p := range s.Pins {
		if b, err := decodeB64(p); err != nil || len(b) != 32 {
			return bad("pin %q: want base64 of a SHA-256", p)
		}
	}
	if s.Proxy != "" {
		if err := checkURL(s.Proxy, "https", "http"); err != nil {
			return bad("proxy: %v", err)
		}
	}
	if len(s.NoProxy) > MaxNoProxy {
		return bad("more than %d no_proxy entries", MaxNoProxy)
	}
	for _, h := range s.NoProxy {
		if err := checkNoProxy(h); err != nil {
			return bad("no_proxy entry %q: %v", h, err)
		}
	}
	if s.TLSMaxVersion != "" && s.TLSMaxVersion != "1.2" && s.TLSMaxVersion != "1.3" {
		return bad("tls_max_version %q: want 1.2 or 1.3", s.TLSMaxVersion)
	}
	if s.CacheTTLSeconds < 0 || s.CacheTTLSeconds > MaxCacheSeconds || s.CacheMaxStaleSeconds < 0 || s.CacheMaxStaleSeconds > MaxCacheSeconds {
		return bad("cache durations must be between 0 and %d seconds", MaxCacheSeconds)
	}
	return nil
}

// Credential is the content of a credential delivery: an account that flows
// ask for by name (the delivery's target).
type Credential struct {
	Store       string `json:"store"`
	Safe        string `json:"safe,omitempty"`
	Folder      string `json:"folder,omitempty"`
	Object      string `json:"object,omitempty"`
	Query       string `json:"query,omitempty"`
	QueryFormat string `json:"query_format,omitempty"` // Exact or Regexp; only with query
	UsernameVar string `json:"username_var,omitempty"`
}

// Kind implements Content.
func (*Credential) Kind() Kind { return KindCredential }

func (c *Credential) marshal() ([]byte, error) { return json.Marshal(c) }

func (c *Credential) validate() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: credential: %s", ErrInvalid, fmt.Sprintf(f, a...))
	}
	if err := checkName(c.Store); err != nil {
		return bad("store: %v", err)
	}
	if (c.Object == "") == (c.Query == "") {
		return bad("exactly one of object and query must be set")
	}
	if c.QueryFormat != "" && (c.Query == "" || (c.QueryFormat != "Exact" && c.QueryFormat != "Regexp")) {
		return bad("query_format must be Exact or Regexp, and only with query")
	}
	for f, v := range map[string]string{"safe": c.Safe, "folder": c.Folder, "object": c.Object, "query": c.Query, "username_var": c.UsernameVar} {
		if len(v) > 1024 || !printable(v) {
			return bad("%s: at most 1024 printable characters", f)
		}
	}
	return nil
}

// Revoke is the content of a revoke delivery: it names the kind of the
// object removed; the object's name is the delivery's target. Its payload
// is empty.
type Revoke struct {
	Revokes Kind
}

// Kind implements Content.
func (*Revoke) Kind() Kind { return KindRevoke }

func (*Revoke) marshal() ([]byte, error) { return []byte{}, nil }

func (r *Revoke) validate() error {
	if !r.Revokes.Valid() || r.Revokes == KindRevoke {
		return fmt.Errorf("%w: cannot revoke kind %q", ErrInvalid, r.Revokes)
	}
	return nil
}

// wireTypes are the JSON shapes of each kind's content.
var wireTypes = map[Kind]reflect.Type{
	KindApplication: reflect.TypeFor[wireApplication](),
	KindGroupKey:    reflect.TypeFor[wireGroupKey](),
	KindStore:       reflect.TypeFor[Store](),
	KindCredential:  reflect.TypeFor[Credential](),
}

// decodeContent decodes a payload's plaintext strictly (SPEC §3.1): one
// JSON object, whitespace around it allowed; keys matched exactly, each
// once; no unknown key, no null, nothing after the object.
func decodeContent(k Kind, revoke bool, plain []byte) (Content, error) {
	if revoke {
		if len(plain) != 0 {
			return nil, malformed("revoke payload is not empty")
		}
		return &Revoke{Revokes: k}, nil
	}
	wt, ok := wireTypes[k]
	if !ok {
		return nil, malformed("kind %q has no content", k)
	}
	if t := bytes.TrimLeft(plain, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, malformed("content: not a JSON object")
	}
	if err := strictjson.Check(plain, wt, strictjson.Options{NoNull: true}); err != nil {
		return nil, malformed("content: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	decode := func(v any) error {
		if err := dec.Decode(v); err != nil {
			return malformed("content: %v", err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return malformed("content: data after the JSON object")
		}
		return nil
	}
	switch k {
	case KindApplication:
		var w wireApplication
		if err := decode(&w); err != nil {
			w.PrivateKey.s.Wipe() // decoded before a later error
			return nil, err
		}
		a := &Application{PrivateKey: w.PrivateKey.s}
		for _, c := range w.Chain {
			der, err := decodeB64(c)
			if err != nil {
				a.PrivateKey.Wipe()
				return nil, malformed("chain: not canonical base64")
			}
			a.Chain = append(a.Chain, der)
		}
		return a, nil
	case KindGroupKey:
		var w wireGroupKey
		if err := decode(&w); err != nil {
			w.PrivateKey.s.Wipe()
			return nil, err
		}
		return &GroupKey{PrivateKey: w.PrivateKey.s}, nil
	case KindStore:
		s := new(Store)
		return s, decode(s)
	case KindCredential:
		c := new(Credential)
		return c, decode(c)
	}
	return nil, malformed("kind %q has no content", k)
}

// b64Secret is a secret carried in JSON as canonical base64. It decodes
// straight from the JSON bytes into a Secret, so that no string copy of the
// key is made.
type b64Secret struct{ s secret.Secret }

func (b b64Secret) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, b64.EncodedLen(b.s.Len())+2)
	out = append(out, '"')
	out = b64.AppendEncode(out, b.s.Reveal())
	return append(out, '"'), nil
}

func (b *b64Secret) UnmarshalJSON(raw []byte) error {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return errors.New("private_key: want a base64 string")
	}
	in := raw[1 : len(raw)-1]
	out := make([]byte, b64.DecodedLen(len(in)))
	n, err := b64.Decode(out, in)
	if err != nil || b64.EncodedLen(n) != len(in) {
		clear(out)
		return errors.New("private_key: not canonical base64")
	}
	b.s = secret.New(out[:n])
	return nil
}

// checkNoProxy checks one no_proxy entry: a host name or suffix ("host",
// ".suffix", "*.suffix"), an IP address, a CIDR block, or "*": what the CCP
// client's bypass list matches.
func checkNoProxy(h string) error {
	if h == "" || len(h) > 253 || strings.ContainsAny(h, " ") || !printable(h) {
		return errors.New("want a host name, suffix, IP address or CIDR block")
	}
	if strings.Contains(h, "/") {
		if _, err := netip.ParsePrefix(h); err != nil {
			return errors.New("not a CIDR block")
		}
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func checkURL(raw string, schemes ...string) error {
	if len(raw) > 2048 || !printable(raw) {
		return errors.New("not a printable URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok {
		return fmt.Errorf("scheme must be %s", strings.Join(schemes, " or "))
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") || u.Opaque != "" {
		return errors.New("want scheme://host[:port] only")
	}
	return nil
}
