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
	p := fastParser{b: b}
	p.space()
	if !p.byte('{') {
		return req, false
	}
	var seenRun, seenFlow, seenNames bool
	p.space()
	if p.peek() == '}' {
		return req, false // {} : the strict decoder's error about names
	}
	for {
		p.space()
		key, ok := p.str()
		if !ok {
			return req, false
		}
		p.space()
		if !p.byte(':') {
			return req, false
		}
		p.space()
		switch key {
		case "run_id":
			if seenRun {
				return req, false
			}
			seenRun = true
			if req.RunID, ok = p.str(); !ok {
				return req, false
			}
		case "flow_id":
			if seenFlow {
				return req, false
			}
			seenFlow = true
			if req.FlowID, ok = p.str(); !ok {
				return req, false
			}
		case "names":
			if seenNames {
				return req, false
			}
			seenNames = true
			if req.Names, ok = p.strList(); !ok {
				return req, false
			}
		default:
			return req, false
		}
		p.space()
		if p.byte('}') {
			break
		}
		if !p.byte(',') {
			return req, false
		}
	}
	p.space()
	return req, p.i == len(p.b)
}

type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *fastParser) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// space skips JSON's four whitespace bytes.
func (p *fastParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// str reads a string of printable ASCII without escapes.
func (p *fastParser) str() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := string(p.b[start:p.i])
			p.i++
			return s, true
		case c == '\\' || c < 0x20 || c >= 0x7F:
			return "", false
		}
		p.i++
	}
	return "", false
}

// strList reads a non-empty array of such strings.
func (p *fastParser) strList() ([]string, bool) {
	if !p.byte('[') {
		return nil, false
	}
	out := make([]string, 0, 4)
	for {
		p.space()
		s, ok := p.str()
		if !ok {
			return nil, false
		}
		out = append(out, s)
		p.space()
		if p.byte(']') {
			return out, true
		}
		if !p.byte(',') {
			return nil, false
		}
	}
}
