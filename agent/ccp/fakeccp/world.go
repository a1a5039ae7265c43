package fakeccp

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// account is a fixture account with its current password and its
// precomputed success body.
type account struct {
	safe, folder, name string
	lsafe              string            // lower-case safe
	path               string            // Safe\Folder\Name, for the audit
	props              []prop            // sorted by key, without the reserved ones
	lprops             map[string]string // lower-case key -> value, reserved ones included
	state              atomic.Pointer[accountState]
}

type prop struct{ key, value string }

type accountState struct {
	password string
	changing bool
	body     []byte
	clen     []string // Content-Length header value
}

// describe is how CCP names an account in APPAP227E.
func (a *account) describe() string {
	return "Safe=" + a.safe + ";Folder=" + a.folder + ";Object=" + a.name
}

func (a *account) setState(password string, changing bool) {
	st := &accountState{password: password, changing: changing}
	// Every value is a JSON string; keys sorted, Content first.
	b := make([]byte, 0, 256)
	b = append(b, `{"Content":`...)
	b = appendJSONString(b, password)
	fields := append([]prop{
		{"Folder", a.folder}, {"Name", a.name}, {"Safe", a.safe},
		{"PasswordChangeInProcess", map[bool]string{true: "True", false: "False"}[changing]},
	}, a.props...)
	slices.SortFunc(fields, func(x, y prop) int { return strings.Compare(x.key, y.key) })
	for _, f := range fields {
		b = append(b, ',')
		b = appendJSONString(b, f.key)
		b = append(b, ':')
		b = appendJSONString(b, f.value)
	}
	b = append(b, '}')
	st.body = b
	st.clen = []string{strconv.Itoa(len(b))}
	a.state.Store(st)
}

// app is a compiled application.
type app struct {
	id        string
	serials   map[string]bool
	issuers   []dnMatcher
	subjects  []dnMatcher
	sans      []sanMatcher
	machines  []netip.Prefix
	readable  map[string]bool // lower-case safe names with Retrieve and List
	needsCert bool
}

// world is the compiled fixture. Only account states change after New.
type world struct {
	settings   Settings
	noCertCode int
	accounts   []*account
	byName     map[string][]*account // lower-case object name
	byKey      map[string]*account   // lower-case safe\folder\name
	apps       map[string]*app       // lower-case AppID
	re         regexpCache
}

func compile(f *Fixture) (*world, error) {
	w := &world{
		settings: f.Settings,
		byName:   map[string][]*account{},
		byKey:    map[string]*account{},
		apps:     map[string]*app{},
	}
	w.noCertCode = f.Settings.NoCertificateStatus
	if w.noCertCode == 0 {
		w.noCertCode = 403
	}
	for _, sf := range f.Safes {
		for _, fa := range sf.Accounts {
			a := &account{safe: sf.Name, folder: fa.Folder, name: fa.Name, lprops: map[string]string{}}
			if a.folder == "" {
				a.folder = "Root"
			}
			a.lsafe = strings.ToLower(a.safe)
			a.path = a.safe + `\` + a.folder + `\` + a.name
			for k, v := range fa.Properties {
				if reservedProperty(k) {
					continue
				}
				a.props = append(a.props, prop{k, v})
				a.lprops[strings.ToLower(k)] = v
			}
			a.lprops["safe"] = a.safe
			a.lprops["folder"] = a.folder
			a.lprops["name"] = a.name
			a.lprops["object"] = a.name
			a.setState(fa.Password, fa.ChangeInProgress)
			w.accounts = append(w.accounts, a)
			ln := strings.ToLower(a.name)
			w.byName[ln] = append(w.byName[ln], a)
			w.byKey[accountKey(a.safe, a.folder, a.name)] = a
		}
	}
	for _, fa := range f.Applications {
		ap := &app{id: fa.AppID, serials: map[string]bool{}, readable: map[string]bool{}}
		for _, s := range fa.Authentication.CertificateSerialNumbers {
			n, ok := normalizeSerial(s)
			if !ok {
				return nil, fmt.Errorf("fakeccp: application %s: bad serial %q", fa.AppID, s)
			}
			ap.serials[n] = true
		}
		if ca := fa.Authentication.CertificateAttributes; ca != nil {
			for _, s := range ca.Issuer {
				at, err := parseDN(s)
				if err != nil {
					return nil, err
				}
				ap.issuers = append(ap.issuers, dnMatcher{s, at})
			}
			for _, s := range ca.Subject {
				at, err := parseDN(s)
				if err != nil {
					return nil, err
				}
				ap.subjects = append(ap.subjects, dnMatcher{s, at})
			}
			for _, s := range ca.SubjectAlternativeName {
				k, v, err := parseSAN(s)
				if err != nil {
					return nil, err
				}
				ap.sans = append(ap.sans, sanMatcher{k, v})
			}
		}
		ap.needsCert = len(ap.serials) > 0 || len(ap.issuers) > 0 || len(ap.subjects) > 0 || len(ap.sans) > 0
		for _, m := range fa.Authentication.AllowedMachines {
			pfx, err := parseMachine(m)
			if err != nil {
				return nil, err
			}
			ap.machines = append(ap.machines, pfx)
		}
		for _, m := range fa.Safes {
			var retrieve, list bool
			for _, p := range m.Permissions {
				switch strings.ToLower(p) {
				case "retrieve":
					retrieve = true
				case "list":
					list = true
				}
			}
			if retrieve && list {
				ap.readable[strings.ToLower(m.Name)] = true
			}
		}
		w.apps[strings.ToLower(ap.id)] = ap
	}
	return w, nil
}

func accountKey(safe, folder, name string) string {
	if folder == "" {
		folder = "Root"
	}
	return strings.ToLower(safe + "\x00" + folder + "\x00" + name)
}

// authenticate checks every configured method. cert is the verified
// client certificate or nil; addr the client's address.
func (w *world) authenticate(ap *app, cert *x509.Certificate, serial string, addr netip.Addr) *ccpError {
	if len(ap.machines) > 0 {
		ok := false
		for _, m := range ap.machines {
			if addr.IsValid() && m.Contains(addr.Unmap()) {
				ok = true
				break
			}
		}
		if !ok {
			return errAuth(ap.id, "Address ["+addr.Unmap().String()+"] is unauthorized")
		}
	}
	if !ap.needsCert {
		return nil
	}
	if cert == nil {
		return errNoCert(w.noCertCode)
	}
	if len(ap.serials) > 0 && !ap.serials[serial] {
		return errAuth(ap.id, `CertificateSN "`+serial+`" is unauthorized`)
	}
	exact := strings.EqualFold(w.settings.AttributeMatch, "exact")
	if len(ap.issuers) > 0 && !slices.ContainsFunc(ap.issuers, func(m dnMatcher) bool { return m.match(cert.Issuer, exact) }) {
		return errAuth(ap.id, `CertificateIssuer "`+cert.Issuer.String()+`" is unauthorized`)
	}
	if len(ap.subjects) > 0 && !slices.ContainsFunc(ap.subjects, func(m dnMatcher) bool { return m.match(cert.Subject, exact) }) {
		return errAuth(ap.id, `CertificateSubject "`+cert.Subject.String()+`" is unauthorized`)
	}
	if len(ap.sans) > 0 && !slices.ContainsFunc(ap.sans, func(m sanMatcher) bool { return m.match(cert) }) {
		return errAuth(ap.id, `CertificateSubjectAlternativeName is unauthorized`)
	}
	return nil
}

// matcher is one compiled criterion.
type matcher struct {
	lkey  string
	value string
	re    *regexp.Regexp
	fold  bool
}

// find returns the accounts readable by ap that match req.
func (w *world) find(ap *app, req *Request) ([]*account, *ccpError) {
	ms := make([]matcher, 0, len(req.Criteria))
	var exactName string
	hasName := false
	for _, c := range req.Criteria {
		m := matcher{lkey: asciiLower(c.Key), value: c.Value}
		isName := m.lkey == "object" || m.lkey == "name"
		if req.Regexp {
			re, err := w.re.get(c.Value, w.settings.RegexpAnchored, w.settings.RegexpCaseInsensitive)
			if err != nil {
				return nil, errInvalidQuery("The regular expression [" + c.Value + "] is invalid.")
			}
			m.re = re
		} else if isName {
			m.fold = strings.EqualFold(w.settings.ObjectCase, "insensitive")
			if !hasName {
				exactName, hasName = c.Value, true
			}
		} else {
			m.fold = !strings.EqualFold(w.settings.PropertyCase, "sensitive")
		}
		ms = append(ms, m)
	}
	candidates := w.accounts
	if hasName {
		candidates = w.byName[strings.ToLower(exactName)]
	}
	var out []*account
	for _, a := range candidates {
		if !ap.readable[a.lsafe] {
			continue
		}
		if matchAll(a, ms) {
			out = append(out, a)
			if len(out) == 2 {
				break
			}
		}
	}
	return out, nil
}

func matchAll(a *account, ms []matcher) bool {
	for i := range ms {
		m := &ms[i]
		v, ok := a.lprops[m.lkey]
		if !ok {
			return false
		}
		switch {
		case m.re != nil:
			if !m.re.MatchString(v) {
				return false
			}
		case m.fold:
			if !strings.EqualFold(v, m.value) {
				return false
			}
		default:
			if v != m.value {
				return false
			}
		}
	}
	return true
}

// regexpCache keeps compiled criteria; it is cleared when full so that
// hostile clients cannot grow it without bound.
type regexpCache struct {
	mu sync.Mutex
	m  map[string]*regexp.Regexp
}

const regexpCacheMax = 1024

// maxRegexpBytes bounds a criterion compiled as a regular expression.
const maxRegexpBytes = 1024

func (c *regexpCache) get(expr string, anchored, fold bool) (*regexp.Regexp, error) {
	if len(expr) > maxRegexpBytes {
		return nil, errors.New("regular expression too long")
	}
	src := expr
	if anchored {
		src = `^(?:` + src + `)$`
	}
	if fold {
		src = `(?i)` + src
	}
	c.mu.Lock()
	re, ok := c.m[src]
	c.mu.Unlock()
	if ok {
		return re, nil
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= regexpCacheMax {
		c.m = map[string]*regexp.Regexp{}
	}
	c.m[src] = re
	c.mu.Unlock()
	return re, nil
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it (HTML-sensitive characters, U+2028 and U+2029 included).
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
