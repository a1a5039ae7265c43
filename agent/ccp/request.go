package ccp

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/credagent/credagent/agent/localapi/apitype"
)

// forbidden are the characters CCP's documentation refuses in parameter
// values. ';' is refused everywhere except between the pairs of a Query.
const forbidden = "+&%"

// validate refuses, before anything is sent, a request CCP would reject or
// misread. Its errors name the field and the character, never the value.
func (r Request) validate() error {
	if strings.TrimSpace(r.AppID) == "" {
		return invalid("AppID is required")
	}
	if r.Query == "" && r.Safe == "" && r.Folder == "" && r.Object == "" {
		return invalid("a request needs Safe, Folder, Object or Query besides AppID")
	}
	fields := []struct{ name, v string }{
		{"AppID", r.AppID}, {"Safe", r.Safe}, {"Folder", r.Folder},
		{"Object", r.Object}, {"Reason", r.Reason},
	}
	for _, f := range fields {
		if err := checkValue(f.name, f.v, forbidden+";"); err != nil {
			return err
		}
	}
	if r.Query != "" {
		if err := checkQuery(r.Query); err != nil {
			return err
		}
	}
	switch strings.ToLower(r.QueryFormat) {
	case "", "exact", "regexp":
	default:
		return invalid("QueryFormat must be Exact or Regexp")
	}
	if r.QueryFormat != "" && r.Query == "" {
		return invalid("QueryFormat is set without a Query")
	}
	if r.ConnectionTimeout < 0 {
		return invalid("ConnectionTimeout must not be negative")
	}
	return nil
}

// checkQuery checks "Key=Value;Key=Value": ';' separates the pairs and the
// first '=' of each pair separates its key from its value. One trailing ';'
// is tolerated.
func checkQuery(q string) error {
	pairs := strings.Split(strings.TrimSuffix(q, ";"), ";")
	for i, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return invalid(fmt.Sprintf("Query pair %d has no '=' between key and value", i+1))
		}
		if strings.TrimSpace(k) == "" {
			return invalid(fmt.Sprintf("Query pair %d has an empty key", i+1))
		}
		if err := checkValue(fmt.Sprintf("Query key %d", i+1), k, forbidden); err != nil {
			return err
		}
		if err := checkValue(fmt.Sprintf("Query value %d", i+1), v, forbidden); err != nil {
			return err
		}
	}
	return nil
}

func checkValue(field, v, bad string) error {
	if i := strings.IndexAny(v, bad); i >= 0 {
		return invalid(fmt.Sprintf("%s contains %q, which CCP does not accept in a value", field, v[i]))
	}
	for _, c := range v {
		if c < 0x20 || c == 0x7f {
			return invalid(fmt.Sprintf("%s contains a control character", field))
		}
	}
	return nil
}

func invalid(msg string) *Error {
	return &Error{Class: apitype.ClassInvalidRequest, Message: msg}
}

// encode returns the query string, parameters in a fixed order. Spaces are
// written as %20, not '+': '+' is a character CCP's documentation refuses,
// and an IIS in front of it need not read it as a space. Backslashes, '=' and
// ';' are percent-encoded; every CCP decodes them.
func (r Request) encode() string {
	var b strings.Builder
	add := func(k, v string) {
		if v == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(escape(v))
	}
	add("AppID", r.AppID)
	if r.Query != "" {
		add("Query", r.Query)
		add("QueryFormat", r.QueryFormat)
	} else {
		add("Safe", r.Safe)
		add("Folder", r.Folder)
		add("Object", r.Object)
	}
	add("Reason", r.Reason)
	if r.ConnectionTimeout > 0 {
		add("ConnectionTimeout", strconv.Itoa(r.ConnectionTimeout))
	}
	if r.FailRequestOnPasswordChange {
		add("FailRequestOnPasswordChange", "true")
	}
	return b.String()
}

// escape percent-encodes v for a query value, with %20 for spaces.
func escape(v string) string {
	return strings.ReplaceAll(url.QueryEscape(v), "+", "%20")
}
