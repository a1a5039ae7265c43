package fakeccp

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// dnAttr is one attribute of a distinguished name, type in upper case.
type dnAttr struct{ typ, value string }

var dnTypeAliases = map[string]string{
	"CN": "CN", "COMMONNAME": "CN",
	"O": "O", "ORGANIZATION": "O",
	"OU": "OU", "ORGANIZATIONALUNIT": "OU",
	"C": "C", "COUNTRY": "C",
	"L": "L", "LOCALITY": "L",
	"ST": "ST", "S": "ST", "PROVINCE": "ST",
	"STREET":       "STREET",
	"SERIALNUMBER": "SERIALNUMBER",
	"E":            "E", "EMAIL": "E", "EMAILADDRESS": "E",
	"DC": "DC",
}

var oidNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "STREET",
	"2.5.4.5":                    "SERIALNUMBER",
	"1.2.840.113549.1.9.1":       "E",
	"0.9.2342.19200300.100.1.25": "DC",
}

// parseDN parses "CN=x, O=y" (commas escaped as "\,") into attributes.
func parseDN(s string) ([]dnAttr, error) {
	var out []dnAttr
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			i++
			cur.WriteByte(s[i])
			continue
		}
		if c == ',' {
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	parts = append(parts, cur.String())
	for _, part := range parts {
		part = strings.TrimSpace(part)
		typ, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not TYPE=value", part)
		}
		t, ok := dnTypeAliases[strings.ToUpper(strings.TrimSpace(typ))]
		if !ok {
			return nil, fmt.Errorf("unknown attribute type %q", strings.TrimSpace(typ))
		}
		out = append(out, dnAttr{t, strings.TrimSpace(val)})
	}
	if len(out) == 0 {
		return nil, errors.New("empty distinguished name")
	}
	return out, nil
}

func nameAttrs(n pkix.Name) []dnAttr {
	var out []dnAttr
	for _, a := range n.Names {
		t, ok := oidNames[a.Type.String()]
		if !ok {
			t = a.Type.String()
		}
		out = append(out, dnAttr{t, fmt.Sprint(a.Value)})
	}
	return out
}

// dnMatcher matches a certificate name against one configured entry.
type dnMatcher struct {
	raw   string
	attrs []dnAttr
}

func (m dnMatcher) match(n pkix.Name, exact bool) bool {
	if exact {
		return strings.EqualFold(strings.ReplaceAll(m.raw, ", ", ","), n.String())
	}
	have := nameAttrs(n)
	for _, want := range m.attrs {
		found := false
		for _, h := range have {
			if h.typ == want.typ && h.value == want.value {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// parseSAN parses "DNS:name", "IP:addr", "Email:addr", "URI:uri" and the
// Windows forms "DNS Name=name", "IP Address=addr", "RFC822 Name=addr",
// "URL=uri".
func parseSAN(s string) (kind, value string, err error) {
	k, v, ok := strings.Cut(s, ":")
	if kk, vv, ok2 := strings.Cut(s, "="); ok2 && (!ok || len(kk) < len(k)) {
		k, v, ok = kk, vv, true
	}
	if !ok {
		return "", "", fmt.Errorf("subject alternative name %q is not KIND:value", s)
	}
	switch strings.ToLower(strings.TrimSpace(k)) {
	case "dns", "dns name":
		kind = "dns"
	case "ip", "ip address":
		kind = "ip"
		a, err := netip.ParseAddr(strings.TrimSpace(v))
		if err != nil {
			return "", "", fmt.Errorf("subject alternative name %q: bad IP address", s)
		}
		return kind, a.Unmap().String(), nil
	case "email", "rfc822 name", "rfc822":
		kind = "email"
	case "uri", "url":
		kind = "uri"
	default:
		return "", "", fmt.Errorf("subject alternative name %q: unknown kind %q (want DNS, IP, Email or URI)", s, strings.TrimSpace(k))
	}
	return kind, strings.TrimSpace(v), nil
}

type sanMatcher struct{ kind, value string }

func (m sanMatcher) match(c *x509.Certificate) bool {
	switch m.kind {
	case "dns":
		for _, d := range c.DNSNames {
			if strings.EqualFold(d, m.value) {
				return true
			}
		}
	case "ip":
		for _, ip := range c.IPAddresses {
			if a, ok := netip.AddrFromSlice(ip); ok && a.Unmap().String() == m.value {
				return true
			}
		}
	case "email":
		for _, e := range c.EmailAddresses {
			if strings.EqualFold(e, m.value) {
				return true
			}
		}
	case "uri":
		for _, u := range c.URIs {
			if u.String() == m.value {
				return true
			}
		}
	}
	return false
}
