package client

import (
	"bytes"
	"time"

	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/secret"
)

// parseResolveAnswerFast reads the answer the agent writes (encodeResolve in
// agent/localapi) when every name resolved, in one pass and without
// reflection:
//
//	{"results":{"sap":{"password":"p\"w","username":"u","properties":{"Address":"db1"},"from_cache":false,"cache_age_ms":0,"password_change_in_process":false}}}
//
// It answers ok only for input that decodeResolutionSlow reads to the same
// Resolution: one result per name, in the order of names, which are
// distinct; every key exact and once; every string but the password
// printable ASCII without escapes; cache_age_ms an integer of at most 18
// digits. Anything else (a per-name error, a missing or extra name, null,
// an empty object, an unknown or repeated key, trailing data, a syntax
// error, a password DecodePassword refuses) is left to the slow path; the
// passwords decoded before it gives up are wiped. Fuzzing checks the two
// against each other (FuzzResolveAnswerFastMatchesSlow).
func parseResolveAnswerFast(b []byte, names []string) (res *Resolution, ok bool) {
	if !distinct(names) {
		return nil, false
	}
	creds := make([]Credential, 0, len(names))
	defer func() {
		if !ok {
			for i := range creds {
				creds[i].Password.Wipe()
			}
		}
	}()
	p := scanner{b: b}
	var seenResults bool
	ok = p.object(func(key []byte) bool {
		if string(key) != "results" || seenResults {
			return false
		}
		seenResults = true
		return p.object(func(key []byte) bool {
			i := len(creds)
			if i == len(names) || string(key) != names[i] {
				return false
			}
			creds = append(creds, Credential{Name: names[i]})
			return p.item(&creds[i])
		})
	}) && len(creds) == len(names) && p.end()
	if !ok {
		return nil, false
	}
	return &Resolution{Credentials: creds}, true
}

// distinct reports whether no name is listed twice.
func distinct(names []string) bool {
	if len(names) > 32 {
		seen := make(map[string]bool, len(names))
		for _, n := range names {
			if seen[n] {
				return false
			}
			seen[n] = true
		}
		return true
	}
	for i, n := range names {
		for _, m := range names[:i] {
			if m == n {
				return false
			}
		}
	}
	return true
}

// itemKeys are the members of a successful item, each allowed once.
var itemKeys = [...]string{"password", "username", "properties", "from_cache", "stale", "cache_age_ms", "password_change_in_process"}

// item reads one successful name's object into cr.
func (p *scanner) item(cr *Credential) bool {
	var seen uint8
	return p.object(func(key []byte) bool {
		k := 0
		for k < len(itemKeys) && itemKeys[k] != string(key) {
			k++
		}
		if k == len(itemKeys) || seen&(1<<k) != 0 {
			return false
		}
		seen |= 1 << k // before reading, so that no password is overwritten unwiped
		var ok bool
		switch k {
		case 0: // password
			cr.Password, ok = p.password()
		case 1: // username
			var s []byte
			s, ok = p.str()
			cr.Username = string(s)
		case 2: // properties
			cr.Properties, ok = p.properties()
		case 3: // from_cache
			cr.FromCache, ok = p.bool()
		case 4: // stale
			cr.Stale, ok = p.bool()
		case 5: // cache_age_ms
			var ms int64
			ms, ok = p.int()
			cr.CacheAge = time.Duration(ms) * time.Millisecond
		case 6: // password_change_in_process
			cr.PasswordChangeInProcess, ok = p.bool()
		}
		return ok
	})
}

// scanner reads JSON from b at i. Each method skips the whitespace before
// its token.
type scanner struct {
	b []byte
	i int
}

// space skips JSON's four whitespace bytes.
func (p *scanner) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *scanner) byte(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (p *scanner) end() bool {
	p.space()
	return p.i == len(p.b)
}

// object reads a non-empty object; member reads each value, given its key.
func (p *scanner) object(member func(key []byte) bool) bool {
	if !p.byte('{') {
		return false
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') || !member(key) {
			return false
		}
		if p.byte('}') {
			return true
		}
		if !p.byte(',') {
			return false
		}
	}
}

// str reads a string of printable ASCII without escapes and returns its
// content, which aliases b.
func (p *scanner) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	for start := p.i; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			return p.b[start : p.i-1], true
		case c == '\\' || c < 0x20 || c >= 0x7F:
			return nil, false
		}
	}
	return nil, false
}

// password finds the end of a string literal as JSON's grammar does and
// decodes it as decodeResolutionSlow does, with apitype.DecodePassword.
func (p *scanner) password() (secret.Secret, bool) {
	p.space()
	start := p.i
	if !p.byte('"') {
		return secret.Secret{}, false
	}
	for p.i < len(p.b) {
		c := p.b[p.i]
		p.i++
		switch {
		case c == '"':
			pw, err := apitype.DecodePassword(p.b[start:p.i])
			return secret.New(pw), err == nil
		case c < 0x20:
			return secret.Secret{}, false
		case c == '\\':
			if p.i == len(p.b) {
				return secret.Secret{}, false
			}
			e := p.b[p.i]
			p.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if p.i+4 > len(p.b) {
					return secret.Secret{}, false
				}
				for _, h := range p.b[p.i : p.i+4] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return secret.Secret{}, false
					}
				}
				p.i += 4
			default:
				return secret.Secret{}, false
			}
		}
	}
	return secret.Secret{}, false
}

// properties reads a non-empty object of strings.
func (p *scanner) properties() (map[string]string, bool) {
	m := make(map[string]string, 4)
	ok := p.object(func(key []byte) bool {
		v, ok := p.str()
		if _, dup := m[string(key)]; !ok || dup {
			return false
		}
		m[string(key)] = string(v)
		return true
	})
	return m, ok
}

func (p *scanner) bool() (v, ok bool) {
	p.space()
	switch rest := p.b[p.i:]; {
	case bytes.HasPrefix(rest, []byte("true")):
		p.i += 4
		return true, true
	case bytes.HasPrefix(rest, []byte("false")):
		p.i += 5
		return false, true
	}
	return false, false
}

// int reads -?(0|[1-9][0-9]{0,17}): JSON's integers that fit an int64
// whatever their digits.
func (p *scanner) int() (int64, bool) {
	p.space()
	neg := p.i < len(p.b) && p.b[p.i] == '-'
	if neg {
		p.i++
	}
	start := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	digits := p.b[start:p.i]
	if len(digits) == 0 || len(digits) > 18 || len(digits) > 1 && digits[0] == '0' {
		return 0, false
	}
	var v int64
	for _, c := range digits {
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}
