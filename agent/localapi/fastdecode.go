package localapi

import "github.com/credagent/credagent/agent/localapi/apitype"

// parseResolveFast reads the shape every client sends, a ResolveRequest as
// one object of ASCII strings without escapes, in one pass and without
// reflection:
//
//	{"run_id":"r-1","flow_id":"f","names":["sap","crm"]}
//
// It answers ok only for input that the strict decoder (parseResolveStrict)
// reads to the same request; anything else (escapes, bytes above 0x7F,
// null, another value type, an unknown or repeated key, trailing data, a
// syntax error) is left to that decoder, which gives the error. Fuzzing
// checks the two against each other (FuzzResolveFastMatchesStrict).
func parseResolveFast(b []byte) (req apitype.ResolveRequest, ok bool) {
	p := apitype.Scanner{B: b}
	var seen uint8
	ok = p.Object(func(key []byte) bool {
		var k uint8
		switch string(key) {
		case "run_id":
			k = 1
		case "flow_id":
			k = 2
		case "names":
			k = 4
		default:
			return false
		}
		if seen&k != 0 {
			return false
		}
		seen |= k
		switch k {
		case 1:
			s, ok := p.Str()
			req.RunID = string(s)
			return ok
		case 2:
			s, ok := p.Str()
			req.FlowID = string(s)
			return ok
		default:
			req.Names, ok = strList(&p)
			return ok
		}
	}) && p.End()
	return req, ok
}

// strList reads a non-empty array of such strings.
func strList(p *apitype.Scanner) ([]string, bool) {
	if !p.Byte('[') {
		return nil, false
	}
	out := make([]string, 0, 4)
	for {
		s, ok := p.Str()
		if !ok {
			return nil, false
		}
		out = append(out, string(s))
		if p.Byte(']') {
			return out, true
		}
		if !p.Byte(',') {
			return nil, false
		}
	}
}
