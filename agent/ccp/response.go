package ccp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/secret"
)

// maxMessageBytes bounds the CCP message kept in an Error.
const maxMessageBytes = 512

// decodeResponse turns one HTTP answer into an Account or an *Error (whose
// Server and CorrelationID the caller fills in). body is the whole body, at
// most MaxResponseBytes; the caller wipes it afterwards. Content is copied
// into a Secret that does not share memory with body.
func decodeResponse(status int, contentType string, body []byte) (*Account, *Error) {
	kind := sniff(contentType, body)
	if kind == kindHTML || (kind == kindOther && status != http.StatusOK) {
		return nil, classifyPage(status, kind, body)
	}
	fields, err := parseFlat(body)
	if err != nil {
		if status == http.StatusOK || errors.Is(err, errAmbiguousKey) {
			return nil, &Error{Class: apitype.ClassServerError, HTTPStatus: status,
				Message: "CCP answered " + strconv.Itoa(status) + " with a body that is not a JSON object: " + err.Error()}
		}
		return nil, classifyPage(status, kindOther, body)
	}
	defer fields.wipe()

	code := fields.str("ErrorCode")
	if status != http.StatusOK || code != "" {
		msg := fields.str("ErrorMsg")
		if msg == "" {
			msg = fields.str("ErrorMessage") // PVWA's spelling, tolerated
		}
		return nil, classifyCCP(status, code, msg)
	}

	a := &Account{Properties: make(map[string]string, len(fields))}
	for _, f := range fields {
		switch {
		case strings.EqualFold(f.key, "Content"):
			if f.isString {
				a.Content = secret.New(append([]byte(nil), f.val...))
			} else {
				a.Content = secret.New(append([]byte(nil), f.raw...))
			}
		default:
			a.Properties[f.key] = string(f.val)
		}
	}
	a.PasswordChangeInProcess = strings.EqualFold(a.Properties["PasswordChangeInProcess"], "true")
	return a, nil
}

type bodyKind int

const (
	kindJSON bodyKind = iota
	kindHTML
	kindOther
)

// sniff tells a JSON body from an HTML page (IIS's own error pages) and from
// anything else, by Content-Type and by the body's first bytes, since
// neither can be trusted alone.
func sniff(contentType string, body []byte) bodyKind {
	mt, _, _ := mime.ParseMediaType(contentType)
	trimmed := bytes.TrimLeft(body, " \t\r\n\ufeff") // the cutset's U+FEFF takes a UTF-8 BOM
	switch {
	case len(trimmed) > 0 && trimmed[0] == '{':
		return kindJSON
	case strings.Contains(mt, "html"), len(trimmed) > 0 && trimmed[0] == '<':
		return kindHTML
	case strings.HasPrefix(http.DetectContentType(body), "text/html"):
		return kindHTML
	case strings.Contains(mt, "json"):
		return kindJSON
	}
	return kindOther
}

var iisSubstatus = regexp.MustCompile(`\b(40[134])\.(\d{1,2})\b`)

// classifyPage classifies an answer that is not CCP's JSON: an IIS error
// page, a proxy's page, or garbage.
func classifyPage(status int, kind bodyKind, body []byte) *Error {
	e := &Error{HTTPStatus: status}
	what := "an HTML page"
	if kind != kindHTML {
		what = "a non-JSON body"
	}
	// A page is named for what it is. Only IIS writes a substatus
	// (403.7); any other page, Apache's or a proxy's, is an "HTML page".
	code := fmt.Sprintf("HTTP %d", status)
	if kind == kindHTML {
		code = fmt.Sprintf("HTTP %d, HTML page", status)
		if m := iisSubstatus.FindSubmatch(body); m != nil && string(m[1]) == strconv.Itoa(status) {
			code = "IIS " + string(m[1]) + "." + string(m[2])
		}
	}
	e.Code = code
	switch {
	case status == http.StatusOK:
		e.Class = apitype.ClassServerError
		e.Message = "CCP answered 200 with " + what + " instead of an account"
	case status == http.StatusNotFound:
		e.Class = apitype.ClassStoreMisconfigured
		e.Message = "the web service was not found at this address: check the server URL and the web-service path"
	case status == http.StatusForbidden:
		e.Class = apitype.ClassClientCertRejected
		switch code {
		case "IIS 403.7":
			e.Message = "IIS requires a client certificate and received none"
		case "IIS 403.16":
			e.Message = "IIS does not trust the client certificate's issuer"
		case "IIS 403.17":
			e.Message = "IIS says the client certificate is expired or not yet valid"
		case "IIS 403.13":
			e.Message = "IIS says the client certificate is revoked"
		default:
			e.Message = "the server refused access (" + what + ")"
		}
	case status == http.StatusUnauthorized:
		e.Class = apitype.ClassStoreMisconfigured
		e.Message = "the server asks for Windows authentication, which this agent does not do"
	case status >= 300 && status < 400:
		e.Class = apitype.ClassStoreMisconfigured
		e.Message = "the server redirects: check the server URL and the web-service path"
	case status >= 500:
		e.Class = apitype.ClassServerError
		e.Message = "server error (" + what + ")"
	default:
		e.Class = apitype.ClassServerError
		e.Message = "unexpected answer (" + what + ")"
	}
	return e
}

// classifyCCP classifies CCP's JSON error envelope.
func classifyCCP(status int, code, msg string) *Error {
	e := &Error{Code: code, HTTPStatus: status, Message: cleanMessage(msg)}
	switch strings.ToUpper(code) {
	case "APPAP004E":
		e.Class = apitype.ClassNotFound
	case "APPAP008E", "AIMWS031E":
		e.Class = apitype.ClassStoreMisconfigured
	case "APPAP306E", "APPAP330E":
		e.Class = apitype.ClassClientCertRejected
	case "APPAP227E", "APPAP228E", "APPAP229E":
		e.Class = apitype.ClassTooManyObjects
	case "APPAP282E":
		e.Class = apitype.ClassPasswordChanging
	case "APPAP007E":
		e.Class = apitype.ClassVaultUnreachable
	case "AIMWS030E", "APPAP081E", "CASVL010E":
		e.Class = apitype.ClassInvalidRequest
	default:
		switch {
		case status == http.StatusNotFound:
			e.Class = apitype.ClassNotFound
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			e.Class = apitype.ClassClientCertRejected
		case status >= 400 && status < 500:
			e.Class = apitype.ClassInvalidRequest
		default:
			e.Class = apitype.ClassServerError
		}
	}
	if e.Message == "" {
		e.Message = "CCP returned an error without a message"
	}
	return e
}

// CCP echoes the request's criteria in its messages ("matching query
// [Safe=S;Folder=F;Object=O]", and for APPAP227E the matching objects too).
// Those are query strings with values, which stay out of errors and logs;
// the caller knows what it asked for.
var (
	echoedGroup = regexp.MustCompile(`\[[^\[\]]*=[^\[\]]*\]|\([^()]*=[^()]*\)`)
	echoedPair  = regexp.MustCompile(`\b([A-Za-z][A-Za-z0-9_]*)=[^\s;,\])]*`)
)

// cleanMessage bounds a server-supplied message, withholds echoed criteria,
// and drops control characters, so that it cannot forge log lines.
func cleanMessage(s string) string {
	s = echoedGroup.ReplaceAllStringFunc(s, func(g string) string {
		return g[:1] + "criteria withheld" + g[len(g)-1:]
	})
	s = echoedPair.ReplaceAllString(s, "$1=...")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxMessageBytes {
		s = s[:maxMessageBytes]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	return s
}

// field is one top-level member of a flat JSON object. val is the value as
// text: a string unescaped, a number or literal as written (true becomes
// "True", as CCP writes it), a nested object or array as compact JSON.
type field struct {
	key      string
	val      []byte
	raw      []byte
	isString bool
}

type fields []field

func (fs fields) str(key string) string {
	for _, f := range fs {
		if f.key == key {
			return string(f.val)
		}
	}
	for _, f := range fs {
		if strings.EqualFold(f.key, key) {
			return string(f.val)
		}
	}
	return ""
}

// wipe zeroes every value buffer; Content's is among them.
func (fs fields) wipe() {
	for _, f := range fs {
		clear(f.val)
	}
}

// parseFlat decodes a JSON object whose values CCP sends as strings, and
// accepts real booleans, numbers, nulls and nested values too. String
// values are unescaped into fresh byte slices (never Go strings, which
// cannot be wiped), and the scan works on body in place, so that no
// decoder keeps a copy of the password in a buffer nobody can wipe.
//
// The reading is tolerant where real servers vary (types, unknown keys,
// the case of the keys the client looks up), and strict where tolerance
// would mean guessing: two keys that are equal ignoring case ("Content" and
// "content") are refused, since which of them is the password, or the
// error code, would depend on the reader.
func parseFlat(body []byte) (fields, error) {
	body = bytes.TrimPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("\xef\xbb\xbf"))
	if !json.Valid(body) {
		return nil, fmt.Errorf("invalid JSON")
	}
	// From here on body is valid JSON, which keeps the scanner simple.
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	i = skipSpace(body, i+1)
	var fs fields
	index := map[string]int{}
	for i < len(body) && body[i] != '}' {
		kEnd := valueEnd(body, i)
		kb, ok := unquote(body[i:kEnd])
		if !ok {
			fs.wipe()
			return nil, fmt.Errorf("invalid key")
		}
		key := string(kb)
		i = skipSpace(body, kEnd)
		i = skipSpace(body, i+1) // ':'
		vEnd := valueEnd(body, i)
		raw := body[i:vEnd]
		f := field{key: key, raw: raw}
		switch {
		case raw[0] == '"':
			v, ok := unquote(raw)
			if !ok {
				fs.wipe()
				return nil, fmt.Errorf("invalid string value")
			}
			f.raw, f.val, f.isString = nil, v, true
		case string(raw) == "true":
			f.val = []byte("True")
		case string(raw) == "false":
			f.val = []byte("False")
		case string(raw) == "null":
			f.val = []byte{}
		default:
			var b bytes.Buffer
			if json.Compact(&b, raw) == nil {
				f.val = b.Bytes()
			} else {
				f.val = append([]byte(nil), raw...)
			}
		}
		fold := strings.ToLower(key)
		if _, dup := index[fold]; dup {
			clear(f.val)
			fs.wipe()
			return nil, fmt.Errorf("%w: key %s appears twice (ignoring case)", errAmbiguousKey, quoteKey(key))
		}
		index[fold] = len(fs)
		fs = append(fs, f)
		i = skipSpace(body, vEnd)
		if i < len(body) && body[i] == ',' {
			i = skipSpace(body, i+1)
		}
	}
	return fs, nil
}

// errAmbiguousKey is a body with a key twice, ignoring case.
var errAmbiguousKey = errors.New("ambiguous JSON object")

// quoteKey quotes a server's key for a message, bounded.
func quoteKey(k string) string {
	if len(k) > 64 {
		k = k[:64]
	}
	return strconv.QuoteToASCII(k)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value starting at b[i],
// which must be valid JSON.
func valueEnd(b []byte, i int) int {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			j++
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			if depth == 0 {
				return j + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return j
			}
			depth--
			if depth == 0 {
				return j + 1
			}
		case ',', ' ', '\t', '\r', '\n', ':':
			if depth == 0 {
				return j
			}
		}
	}
	return len(b)
}

// unquote unescapes a JSON string literal (quotes included) into a new
// slice, as encoding/json would, without passing through a Go string.
func unquote(q []byte) ([]byte, bool) {
	b, err := secret.UnquoteJSON(q)
	return b, err == nil
}
