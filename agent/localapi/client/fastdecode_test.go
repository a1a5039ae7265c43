package client

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/credagent/credagent/agent/secret"
)

// The usual answer for one name, as encodeResolve writes it.
const sapOK = `{"results":{"sap":{"password":"p\"w","username":"u","properties":{"Address":"db1"},"from_cache":false,"cache_age_ms":0,"password_change_in_process":false}}}` + "\n"

// answerSeeds are answers the fast path must take, and near misses it must
// leave to the slow path. names are joined by commas.
var answerSeeds = []struct {
	in, names string
	fast      bool // the fast path reads it
}{
	{sapOK, "sap", true},
	{`{"results":{"a":{"password":"x","username":"u","from_cache":true,"stale":true,"cache_age_ms":1234,"password_change_in_process":true},"b":{"password":"","username":"","cache_age_ms":-0}}}`, "a,b", true},
	{" \t\r\n{ \"results\" : { \"a\" : { \"username\" : \"u\" , \"password\" : \"q\" } } } \n", "a", true},
	{`{"results":{"a":{"password":"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00\ud800 é\u0000"}}}`, "a", true},
	{`{"results":{"a":{"password":"` + "\x7f" + `"}}}`, "a", true},
	{`{"results":{"a":{"cache_age_ms":999999999999999999}}}`, "a", true},
	{`{"results":{"a":{"cache_age_ms":-999999999999999999}}}`, "a", true},
	{`{"results":{"a":{"properties":{"k":"v","K":"w"}}}}`, "a", true},

	{`{"results":{"a":{"error":{"class":"not_found","message":"m"}}}}`, "a", false}, // a per-name error
	{`{"results":{"a":{"password":"x","error":{"class":"not_found"}}}}`, "a", false},
	{`{"results":{"a":{"password":"x"}}}`, "a,b", false},                      // a name unanswered
	{`{"results":{"a":{"password":"x"},"b":{"password":"y"}}}`, "a", false},   // a name not asked
	{`{"results":{"b":{"password":"y"},"a":{"password":"x"}}}`, "a,b", false}, // another order
	{`{"results":{"a":{"password":"x"},"a":{"password":"y"}}}`, "a,a", false}, // a name twice
	{`{"results":{"a":{"password":"x"}}}`, "a,a", false},                      // a name asked twice
	{`{"results":{}}`, "", false},                                             // empty object
	{`{"results":{"a":{}}}`, "a", false},                                      // empty object
	{`{"results":{"a":{"properties":{}}}}`, "a", false},                       // empty object
	{`{"results":{"a":{"password":"x","password":"y"}}}`, "a", false},         // repeated key
	{`{"results":{"a":{"stale":false,"stale":true}}}`, "a", false},            // repeated key
	{`{"results":{"a":{"properties":{"k":"v","k":"w"}}}}`, "a", false},        // repeated key
	{`{"results":{"a":{"password":"x"}},"results":{"a":{}}}`, "a", false},     // repeated key
	{`{"results":{"a":{"Password":"x"}}}`, "a", false},                        // case: encoding/json would match it
	{`{"Results":{"a":{"password":"x"}}}`, "a", false},                        // case
	{`{"results":{"a":{"password":"x","x":1}}}`, "a", false},                  // unknown key
	{`{"results":{"a":{"password":"x"}},"x":1}`, "a", false},                  // unknown key
	{`{"results":{"a":{"password":null}}}`, "a", false},                       // null
	{`{"results":{"a":null}}`, "a", false},                                    // null
	{`{"results":null}`, "", false},                                           // null
	{`{"results":{"a":{"username":null}}}`, "a", false},                       // null
	{`{"results":{"a":{"password":1}}}`, "a", false},                          // not a string
	{`{"results":{"a":{"username":"\u0075"}}}`, "a", false},                   // escape outside the password
	{`{"results":{"a\u0062":{"password":"x"}}}`, "ab", false},                 // escape in a name
	{`{"results":{"a":{"username":"ü"}}}`, "a", false},                        // above ASCII
	{`{"results":{"ü":{"password":"x"}}}`, "ü", false},                        // above ASCII
	{`{"results":{"a":{"properties":{"k":"` + "\x7f" + `"}}}}`, "a", false},   // DEL
	{`{"results":{"a":{"password":"` + "\x01" + `"}}}`, "a", false},           // raw control byte
	{`{"results":{"a":{"password":"` + "\xff" + `"}}}`, "a", false},           // not UTF-8: DecodePassword refuses
	{`{"results":{"a":{"password":"\x"}}}`, "a", false},                       // bad escape
	{`{"results":{"a":{"password":"\u00g0"}}}`, "a", false},                   // bad escape
	{`{"results":{"a":{"password":"\u00"}}}`, "a", false},                     // truncated escape
	{`{"results":{"a":{"password":"x\"}}}`, "a", false},                       // unterminated
	{`{"results":{"a":{"cache_age_ms":1000000000000000000}}}`, "a", false},    // 19 digits
	{`{"results":{"a":{"cache_age_ms":01}}}`, "a", false},                     // leading zero
	{`{"results":{"a":{"cache_age_ms":1.5}}}`, "a", false},                    // fraction
	{`{"results":{"a":{"cache_age_ms":1e3}}}`, "a", false},                    // exponent
	{`{"results":{"a":{"cache_age_ms":- 1}}}`, "a", false},                    // space after minus
	{`{"results":{"a":{"cache_age_ms":"1"}}}`, "a", false},                    // string
	{`{"results":{"a":{"stale":truex}}}`, "a", false},                         // bad literal
	{`{"results":{"a":{"stale":1}}}`, "a", false},                             // not a bool
	{`{"results":{"a":{"password":"x",}}}`, "a", false},                       // trailing comma
	{`{"results":{"a":{"password":"x"}}}}`, "a", false},                       // trailing data
	{`{"results":{"a":{"password":"x"}}}{}`, "a", false},                      // trailing data
	{`{"results":{"a":{"password":"x"}}`, "a", false},                         // truncated
	{`{"results":{"a":{"password":"x"`, "a", false},                           // truncated
	{`[{"results":{}}]`, "", false},                                           // not an object
	{``, "", false},                                                           // empty
	{`{"results":{"a":{"password":"x","username":"` + strings.Repeat("n", 300) + `"}}}`, "a", true},
}

func splitNames(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func TestParseResolveAnswerFast(t *testing.T) {
	for _, tc := range answerSeeds {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			names := splitNames(tc.names)
			got, ok := parseResolveAnswerFast([]byte(tc.in), names)
			if ok != tc.fast {
				t.Fatalf("fast path took it: %v, want %v", ok, tc.fast)
			}
			if !ok {
				return
			}
			defer got.Wipe()
			want, err := decodeResolutionSlow([]byte(tc.in), names)
			if err != nil {
				t.Fatalf("the slow path refuses what the fast path took: %v", err)
			}
			defer want.Wipe()
			if d := diffResolution(got, want); d != "" {
				t.Fatal(d)
			}
		})
	}
}

// TestParseResolveAnswerFastValues: what the fast path reads, field by
// field, for the usual answer.
func TestParseResolveAnswerFastValues(t *testing.T) {
	body := `{"results":{"a":{"password":"p\"w","username":"u","properties":{"Address":"db1"},"from_cache":true,"stale":true,"cache_age_ms":1500,"password_change_in_process":true}}}`
	res, ok := parseResolveAnswerFast([]byte(body), []string{"a"})
	if !ok {
		t.Fatal("fast path left the usual answer")
	}
	defer res.Wipe()
	cr := res.Get("a")
	if cr == nil || cr.Err != nil || cr.Username != "u" || cr.Password.RevealString() != `p"w` ||
		!reflect.DeepEqual(cr.Properties, map[string]string{"Address": "db1"}) ||
		!cr.FromCache || !cr.Stale || cr.CacheAge.Milliseconds() != 1500 || !cr.PasswordChangeInProcess {
		t.Fatalf("read %+v", cr)
	}
}

// diffResolution compares two Resolutions field by field, passwords by
// their bytes, and describes the first difference without a password.
func diffResolution(got, want *Resolution) string {
	if len(got.Credentials) != len(want.Credentials) {
		return fmt.Sprintf("%d credentials, want %d", len(got.Credentials), len(want.Credentials))
	}
	for i := range got.Credentials {
		g, w := got.Credentials[i], want.Credentials[i]
		if !bytes.Equal(g.Password.Reveal(), w.Password.Reveal()) || (g.Password.Reveal() == nil) != (w.Password.Reveal() == nil) {
			return fmt.Sprintf("credential %d (%q): passwords differ", i, g.Name)
		}
		g.Password, w.Password = secret.Secret{}, secret.Secret{} // compared above
		if !reflect.DeepEqual(g, w) {
			return fmt.Sprintf("credential %d: fast %+v, slow %+v", i, g, w)
		}
	}
	return ""
}

// FuzzResolveAnswerFastMatchesSlow: whatever the fast path reads, the slow
// path reads the same way; so the fast path changes no result, only its
// cost.
func FuzzResolveAnswerFastMatchesSlow(f *testing.F) {
	for _, tc := range answerSeeds {
		f.Add([]byte(tc.in), tc.names)
	}
	f.Fuzz(func(t *testing.T, in []byte, names string) {
		ns := splitNames(names)
		got, ok := parseResolveAnswerFast(in, ns)
		if !ok {
			return
		}
		defer got.Wipe()
		want, err := decodeResolutionSlow(in, ns)
		if err != nil {
			t.Fatalf("fast path read %q; the slow path refuses it: %v", in, err)
		}
		defer want.Wipe()
		if d := diffResolution(got, want); d != "" {
			t.Fatalf("%q, names %q: %s", in, ns, d)
		}
	})
}

// BenchmarkDecodeResolution: the usual one-name answer, by each path.
func BenchmarkDecodeResolution(b *testing.B) {
	body, names := []byte(sapOK), []string{"sap"}
	for _, bc := range []struct {
		name   string
		decode func([]byte, []string) (*Resolution, error)
	}{
		{"fast", decodeResolution},
		{"slow", decodeResolutionSlow},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, err := bc.decode(body, names)
				if err != nil {
					b.Fatal(err)
				}
				res.Wipe()
			}
		})
	}
}
