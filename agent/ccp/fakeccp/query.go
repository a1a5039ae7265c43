package fakeccp

import (
	"net/url"
	"strconv"
	"strings"
)

// Request is an Accounts request as the fake understood it.
type Request struct {
	AppID string
	// Criteria are the search criteria, in order: those of Query, or those
	// built from Safe, Folder, Object, UserName, Address, Database and
	// PolicyID, with Folder=Root added where the default applies.
	Criteria []Criterion
	// Query is the criteria as CCP echoes them in messages:
	// "Safe=S;Folder=Root;Object=O".
	Query        string
	Regexp       bool // QueryFormat=Regexp
	FailOnChange bool // FailRequestOnPasswordChange=true
	Reason       string
	// ConnectionTimeout is in seconds; 0 when not given.
	ConnectionTimeout int
	// UsedQuery is set when the Query parameter gave the criteria.
	UsedQuery bool
}

// Criterion is one Key=Value of a query. Key is as the client wrote it.
type Criterion struct {
	Key, Value string
}

const (
	pSafe = iota // the first seven (up to pAppID) turn into criteria
	pFolder
	pObject
	pUserName
	pAddress
	pDatabase
	pPolicyID
	pAppID
	pReason
	pConnTimeout
	pQuery
	pQueryFormat
	pFailOnChange
	nParams
)

// paramNames are the parameters' names as CCP writes them, by slot; the
// criteria ones in the order CCP writes them in its messages.
var paramNames = [nParams]string{
	pSafe: "Safe", pFolder: "Folder", pObject: "Object", pUserName: "UserName",
	pAddress: "Address", pDatabase: "Database", pPolicyID: "PolicyID",
	pAppID: "AppID", pReason: "Reason", pConnTimeout: "ConnectionTimeout",
	pQuery: "Query", pQueryFormat: "QueryFormat", pFailOnChange: "FailRequestOnPasswordChange",
}

// paramIndex maps a lower-case parameter name to its slot.
var paramIndex = func() map[string]int {
	m := make(map[string]int, nParams)
	for i, name := range paramNames {
		m[strings.ToLower(name)] = i
	}
	return m
}()

// ParseQuery parses the raw query string of an Accounts request the way
// the real CCP does (ccp-api.md section 1): names in any case, form
// decoding ('+' and %20 are spaces), order irrelevant, unknown parameters
// ignored, the first of repeated parameters kept. queryFolderDefault applies
// Folder=Root to Query requests too. The error, if any, is what the fake
// answers.
func ParseQuery(rawQuery string, queryFolderDefault bool) (Request, error) {
	r, e := parseQuery(rawQuery, queryFolderDefault)
	if e != nil {
		return r, &RequestError{Status: e.status, Code: e.code, Msg: e.msg}
	}
	return r, nil
}

// RequestError is an error answer in CCP's JSON envelope.
type RequestError struct {
	Status int
	Code   string
	Msg    string
}

func (e *RequestError) Error() string { return e.Code + ": " + e.Msg }

func parseQuery(raw string, queryFolderDefault bool) (Request, *ccpError) {
	var req Request
	var vals [nParams]string
	var set [nParams]bool
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return req, errInvalidQuery("The request contains an invalid escape sequence.")
		}
		idx, ok := paramIndex[asciiLower(name)]
		if !ok || set[idx] {
			continue // unknown parameters are ignored; the first of repeats wins
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return req, errInvalidQuery("The value of parameter [" + paramNames[idx] + "] contains an invalid escape sequence.")
		}
		vals[idx], set[idx] = val, true
	}

	req.AppID = vals[pAppID]
	if req.AppID == "" {
		return req, errAppIDRequired
	}
	others := 0
	for i := range nParams {
		if i != pAppID && vals[i] != "" {
			others++
		}
	}
	if others == 0 {
		return req, errInvalidContent("A request needs the AppID and at least one other parameter.")
	}
	if strings.ContainsAny(req.AppID, "+&%;") {
		return req, errInvalidContent("The value of parameter [AppID] contains an invalid character.")
	}

	switch strings.ToLower(vals[pQueryFormat]) {
	case "", "exact":
	case "regexp", "regex":
		req.Regexp = true
	default:
		return req, errInvalidQuery("QueryFormat must be Exact or Regexp.")
	}
	switch strings.ToLower(vals[pFailOnChange]) {
	case "", "false":
	case "true":
		req.FailOnChange = true
	default:
		return req, errInvalidQuery("FailRequestOnPasswordChange must be True or False.")
	}
	if s := vals[pConnTimeout]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return req, errInvalidQuery("ConnectionTimeout must be a number of seconds.")
		}
		req.ConnectionTimeout = n
	}
	req.Reason = vals[pReason]

	// Individual parameters become one Safe=..;Folder=..;Object=.. query,
	// which is why criteria smuggled into one value work.
	q := vals[pQuery]
	if q != "" {
		req.UsedQuery = true
	} else {
		var b strings.Builder
		for i, name := range paramNames[:pAppID] {
			if vals[i] == "" {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte(';')
			}
			b.WriteString(name)
			b.WriteByte('=')
			b.WriteString(vals[i])
		}
		q = b.String()
	}

	hasFolder := false
	safeAt := -1
	for q != "" {
		var part string
		part, q, _ = strings.Cut(q, ";")
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return req, errInvalidQuery("The query [" + part + "] is not Key=Value.")
		}
		if strings.ContainsAny(v, "+&%") || strings.ContainsAny(k, "+&%") {
			if strings.EqualFold(k, "UserName") {
				return req, &ccpError{400, CodeInvalidUserName, "The user name [" + v + "] contains invalid characters."}
			}
			return req, errInvalidContent("The value of [" + k + "] contains an invalid character.")
		}
		switch strings.ToLower(k) {
		case "folder":
			hasFolder = true
		case "safe":
			if safeAt < 0 {
				safeAt = len(req.Criteria)
			}
		}
		req.Criteria = append(req.Criteria, Criterion{k, v})
	}
	if !hasFolder && (!req.UsedQuery || queryFolderDefault) {
		at := safeAt + 1 // after Safe, or first
		req.Criteria = append(req.Criteria, Criterion{})
		copy(req.Criteria[at+1:], req.Criteria[at:])
		req.Criteria[at] = Criterion{"Folder", "Root"}
	}
	var b strings.Builder
	for i, c := range req.Criteria {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(c.Key)
		b.WriteByte('=')
		b.WriteString(c.Value)
	}
	req.Query = b.String()
	return req, nil
}

// asciiLower lowers ASCII letters only, so that a name with a Unicode
// letter that lowers to ASCII (the Kelvin sign) does not alias a parameter.
// It does not allocate when s is already lower case.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
