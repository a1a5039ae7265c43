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
	p := scanner{apitype.Scanner{B: b}}
	var seenResults bool
	ok = p.Object(func(key []byte) bool {
		if string(key) != "results" || seenResults {
			return false
		}
		seenResults = true
		return p.Object(func(key []byte) bool {
			i := len(creds)
			if i == len(names) || string(key) != names[i] {
				return false
			}
			creds = append(creds, Credential{Name: names[i]})
			return p.item(&creds[i])
		})
	}) && len(creds) == len(names) && p.End()
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
	return p.Object(func(key []byte) bool {
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
			s, ok = p.Str()
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

// scanner is apitype.Scanner with the answer's own values.
type scanner struct{ apitype.Scanner }

// password finds the end of a string literal as JSON's grammar does and
// decodes it as decodeResolutionSlow does, with apitype.DecodePassword.
func (p *scanner) password() (secret.Secret, bool) {
	p.Space()
	start := p.I
	if !p.Byte('"') {
		return secret.Secret{}, false
	}
	for p.I < len(p.B) {
		c := p.B[p.I]
		p.I++
		switch {
		case c == '"':
			pw, err := apitype.DecodePassword(p.B[start:p.I])
			return secret.New(pw), err == nil
		case c < 0x20:
			return secret.Secret{}, false
		case c == '\\':
			if p.I == len(p.B) {
				return secret.Secret{}, false
			}
			e := p.B[p.I]
			p.I++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if p.I+4 > len(p.B) {
					return secret.Secret{}, false
				}
				for _, h := range p.B[p.I : p.I+4] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return secret.Secret{}, false
					}
				}
				p.I += 4
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
	ok := p.Object(func(key []byte) bool {
		v, ok := p.Str()
		if _, dup := m[string(key)]; !ok || dup {
			return false
		}
		m[string(key)] = string(v)
		return true
	})
	return m, ok
}

func (p *scanner) bool() (v, ok bool) {
	p.Space()
	switch rest := p.B[p.I:]; {
	case bytes.HasPrefix(rest, []byte("true")):
		p.I += 4
		return true, true
	case bytes.HasPrefix(rest, []byte("false")):
		p.I += 5
		return false, true
	}
	return false, false
}

// int reads -?(0|[1-9][0-9]{0,17}): JSON's integers that fit an int64
// whatever their digits.
func (p *scanner) int() (int64, bool) {
	p.Space()
	neg := p.I < len(p.B) && p.B[p.I] == '-'
	if neg {
		p.I++
	}
	start := p.I
	for p.I < len(p.B) && '0' <= p.B[p.I] && p.B[p.I] <= '9' {
		p.I++
	}
	digits := p.B[start:p.I]
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
