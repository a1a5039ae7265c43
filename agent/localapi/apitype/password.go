package apitype

import (
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/credagent/credagent/agent/secret"
)

// ErrNotUTF8 means a password is not valid UTF-8 and cannot travel as a JSON
// string without being altered.
var ErrNotUTF8 = errors.New("apitype: password is not valid UTF-8")

const hexDigits = "0123456789abcdef"

// AppendPassword appends pw to dst as a JSON string. It writes every byte
// itself, so the only copies are in dst. It fails on invalid UTF-8 rather
// than replacing bytes, which would hand out a wrong password.
func AppendPassword(dst, pw []byte) ([]byte, error) {
	if !utf8.Valid(pw) {
		return dst, ErrNotUTF8
	}
	dst = append(dst, '"')
	for _, c := range pw {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20 || c == 0x7f:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"'), nil
}

// PasswordLen returns an upper bound of AppendPassword's output for pw.
func PasswordLen(pw []byte) int { return 2 + 6*len(pw) }

// ErrBadString means DecodePassword was given something other than a JSON
// string.
var ErrBadString = errors.New("apitype: malformed JSON string")

// DecodePassword decodes the JSON string literal lit (quotes included) into
// a new buffer that the caller owns and should wipe. A password that is not
// valid UTF-8 is refused rather than altered.
func DecodePassword(lit []byte) ([]byte, error) {
	if !utf8.Valid(lit) {
		return nil, ErrNotUTF8
	}
	out, err := secret.UnquoteJSON(lit)
	if err != nil {
		return nil, ErrBadString
	}
	if !utf8.Valid(out) {
		clear(out)
		return nil, ErrNotUTF8
	}
	return out, nil
}

// AppendString appends s as encoding/json writes it: the printable ASCII
// that names, IDs and properties are is written as it is, anything else
// goes through encoding/json. For strings that are not secrets.
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
