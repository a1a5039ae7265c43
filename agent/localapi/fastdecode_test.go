package localapi

import (
	"reflect"
	"strings"
	"testing"
)

// fastSeeds are requests the fast path must take, and near misses it must
// leave to the strict decoder.
var fastSeeds = []struct {
	in   string
	fast bool // the fast path reads it
}{
	{`{"run_id":"r","flow_id":"f","names":["sap"]}`, true},
	{` { "names" : [ "a" , "b" ] , "run_id" : "r-1" } ` + "\n", true},
	{"{\"names\":[\"a\"]}\r\n\t", true},
	{`{"flow_id":"","names":["a"]}`, true},
	{`{"names":["a"],"names":["b"]}`, false},                 // repeated key
	{`{"Names":["a"]}`, false},                               // case: encoding/json would match it
	{`{"names":["a"],"x":1}`, false},                         // unknown key
	{`{"names":["a"]}{}`, false},                             // trailing data
	{`{"names":["a"]},`, false},                              // trailing data
	{`{"names":["a\u0062"]}`, false},                         // escape
	{`{"names":["ü"]}`, false},                               // above ASCII
	{"{\"names\":[\"a\x7f\"]}", false},                       // DEL
	{"{\"names\":[\"a\x00\"]}", false},                       // raw control byte
	{`{"names":[]}`, false},                                  // empty list: the strict decoder's error
	{`{"names":null}`, false},                                // null
	{`{"run_id":null,"names":["a"]}`, false},                 // null
	{`{"run_id":1,"names":["a"]}`, false},                    // number
	{`{"names":["a",]}`, false},                              // trailing comma
	{`{"names":["a"],}`, false},                              // trailing comma
	{`{}`, false},                                            // no names
	{`{"names":["a"]`, false},                                // truncated
	{`{"names":["a`, false},                                  // truncated
	{`[{"names":["a"]}]`, false},                             // not an object
	{``, false},                                              // empty
	{`{"names":["` + strings.Repeat("n", 300) + `"]}`, true}, // long: the checks refuse it after
}

func TestParseResolveFast(t *testing.T) {
	for _, tc := range fastSeeds {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseResolveFast([]byte(tc.in))
			if ok != tc.fast {
				t.Fatalf("fast path took it: %v, want %v", ok, tc.fast)
			}
			if !ok {
				return
			}
			want, err := parseResolveStrict([]byte(tc.in))
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("fast %+v, strict %+v (%v)", got, want, err)
			}
		})
	}
}

// FuzzResolveFastMatchesStrict: whatever the fast path reads, the strict
// decoder reads the same way; so the fast path changes no answer, only
// its cost.
func FuzzResolveFastMatchesStrict(f *testing.F) {
	for _, tc := range fastSeeds {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, ok := parseResolveFast(in)
		if !ok {
			return
		}
		want, err := parseResolveStrict(in)
		if err != nil {
			t.Fatalf("fast path read %q as %+v; the strict decoder refuses it: %v", in, got, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast %+v, strict %+v", in, got, want)
		}
	})
}
