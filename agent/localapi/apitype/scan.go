package apitype

// Scanner reads the usual shape of the API's JSON in one pass, for the
// fast paths of the request's and the answer's decoding: objects, and
// strings of printable ASCII without escapes. Each method skips the
// whitespace before its token and answers false for anything else, which
// its caller leaves to encoding/json.
type Scanner struct {
	B []byte
	I int
}

// Space skips JSON's four whitespace bytes.
func (p *Scanner) Space() {
	for p.I < len(p.B) {
		switch p.B[p.I] {
		case ' ', '\t', '\n', '\r':
			p.I++
		default:
			return
		}
	}
}

// Byte reads the byte c.
func (p *Scanner) Byte(c byte) bool {
	p.Space()
	if p.I < len(p.B) && p.B[p.I] == c {
		p.I++
		return true
	}
	return false
}

// End reports whether only whitespace is left.
func (p *Scanner) End() bool {
	p.Space()
	return p.I == len(p.B)
}

// Str reads a string of printable ASCII without escapes and returns its
// content, which aliases B.
func (p *Scanner) Str() ([]byte, bool) {
	if !p.Byte('"') {
		return nil, false
	}
	for start := p.I; p.I < len(p.B); p.I++ {
		switch c := p.B[p.I]; {
		case c == '"':
			p.I++
			return p.B[start : p.I-1], true
		case c == '\\' || c < 0x20 || c >= 0x7F:
			return nil, false
		}
	}
	return nil, false
}

// Object reads a non-empty object; member reads each value, given its key.
func (p *Scanner) Object(member func(key []byte) bool) bool {
	if !p.Byte('{') {
		return false
	}
	for {
		key, ok := p.Str()
		if !ok || !p.Byte(':') || !member(key) {
			return false
		}
		if p.Byte('}') {
			return true
		}
		if !p.Byte(',') {
			return false
		}
	}
}
