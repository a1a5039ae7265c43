package fakeccp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Fixture is what a fake CCP serves. It is decoded from YAML (or JSON)
// with unknown keys rejected:
//
//	settings:            # the points ccp-api.md leaves open; all optional
//	  propertyCase: insensitive
//	applications:
//	  - appID: DemoApp
//	    authentication:
//	      certificateSerialNumbers: ["1f2e..."]
//	      certificateAttributes: {issuer: [], subject: ["CN=app"], subjectAlternativeName: ["DNS:app"]}
//	      allowedMachines: ["127.0.0.1", "10.0.0.0/8"]
//	    safes:
//	      - {name: RPA-Prod, permissions: [Retrieve, List]}
//	safes:
//	  - name: RPA-Prod
//	    accounts:
//	      - name: sap-prod-admin     # the Object
//	        folder: Root             # default Root; sub-folders Root\A\B
//	        password: secret
//	        changeInProgress: false
//	        properties: {UserName: svc_sap, Address: sap.example.internal}
//	faults:
//	  latency: 50ms
//
// A Fixture must not be changed after it is passed to New.
type Fixture struct {
	Settings     Settings      `yaml:"settings" json:"settings"`
	Applications []Application `yaml:"applications" json:"applications"`
	Safes        []Safe        `yaml:"safes" json:"safes"`
	Faults       FixtureFaults `yaml:"faults" json:"faults"`

	name string // file name, for messages
}

// Settings are the behaviours ccp-api.md marks [open]. The zero value is
// the fake's best guess at the real CCP.
type Settings struct {
	// PropertyCase is how Exact criteria compare with property values other
	// than the object name: "insensitive" (the default) or "sensitive".
	PropertyCase string `yaml:"propertyCase" json:"propertyCase"`
	// ObjectCase is how Exact criteria compare with the object name
	// (Object, Name): "sensitive" (the default) or "insensitive".
	ObjectCase string `yaml:"objectCase" json:"objectCase"`
	// RegexpAnchored makes Regexp criteria match whole values; by default a
	// partial match is enough.
	RegexpAnchored bool `yaml:"regexpAnchored" json:"regexpAnchored"`
	// RegexpCaseInsensitive makes Regexp criteria ignore case.
	RegexpCaseInsensitive bool `yaml:"regexpCaseInsensitive" json:"regexpCaseInsensitive"`
	// NoCertificateStatus is the HTTP status of APPAP330E (an application
	// that needs a certificate, and none reached the fake). Default 403.
	NoCertificateStatus int `yaml:"noCertificateStatus" json:"noCertificateStatus"`
	// AttributeMatch is how certificateAttributes entries match:
	// "subset" (the default: every attribute written in the entry is in the
	// certificate's name, in any order) or "exact" (the entry equals the
	// whole name as Go prints it, RFC 2253 order).
	AttributeMatch string `yaml:"attributeMatch" json:"attributeMatch"`
	// QueryFolderDefault applies the Folder=Root default to Query requests
	// too. By default a Query without Folder searches every folder.
	QueryFolderDefault bool `yaml:"queryFolderDefault" json:"queryFolderDefault"`
	// TrustForwardedFor checks allowed machines against the first address
	// of X-Forwarded-For, as behind a load balancer.
	TrustForwardedFor bool `yaml:"trustForwardedFor" json:"trustForwardedFor"`
}

// Application is an AppID.
type Application struct {
	AppID          string         `yaml:"appID" json:"appID"`
	Authentication Authentication `yaml:"authentication" json:"authentication"`
	Safes          []Membership   `yaml:"safes" json:"safes"`
}

// Authentication lists an application's authentication methods. Every
// configured method must pass; an application with none lets anyone who
// knows its AppID in, as the real CCP does.
type Authentication struct {
	// CertificateSerialNumbers are hex serials, in any case, with or
	// without ':' or ' ' separators.
	CertificateSerialNumbers []string               `yaml:"certificateSerialNumbers" json:"certificateSerialNumbers"`
	CertificateAttributes    *CertificateAttributes `yaml:"certificateAttributes" json:"certificateAttributes"`
	// AllowedMachines are IP addresses or CIDR prefixes.
	AllowedMachines []string `yaml:"allowedMachines" json:"allowedMachines"`
}

// CertificateAttributes are matched against the client certificate. Each
// non-empty list must have at least one entry that matches.
type CertificateAttributes struct {
	// Issuer and Subject entries are distinguished names, "CN=x,O=y".
	Issuer  []string `yaml:"issuer" json:"issuer"`
	Subject []string `yaml:"subject" json:"subject"`
	// SubjectAlternativeName entries are "DNS:name", "IP:addr",
	// "Email:addr" or "URI:uri" (also written "DNS Name=name" as Windows
	// shows them).
	SubjectAlternativeName []string `yaml:"subjectAlternativeName" json:"subjectAlternativeName"`
}

// Membership makes an application a member of a safe. Retrieving needs
// both Retrieve and List.
type Membership struct {
	Name        string   `yaml:"name" json:"name"`
	Permissions []string `yaml:"permissions" json:"permissions"`
}

// Safe holds accounts.
type Safe struct {
	Name     string    `yaml:"name" json:"name"`
	Accounts []Account `yaml:"accounts" json:"accounts"`
}

// Account is one password object.
type Account struct {
	// Name is the object name (the Object parameter, the Name property).
	Name   string `yaml:"name" json:"name"`
	Folder string `yaml:"folder" json:"folder"` // default Root
	// Password is returned as Content.
	Password         string `yaml:"password" json:"password"`
	ChangeInProgress bool   `yaml:"changeInProgress" json:"changeInProgress"`
	// Properties are returned as they are (UserName, Address, PolicyID,
	// LogonDomain, custom file categories ...).
	Properties map[string]string `yaml:"properties" json:"properties"`
}

// FixtureFaults are the faults a fixture starts with (see Faults).
type FixtureFaults struct {
	Latency     time.Duration `yaml:"latency" json:"latency"`
	LatencyRate float64       `yaml:"latencyRate" json:"latencyRate"`
	Status      int           `yaml:"status" json:"status"`
	StatusRate  float64       `yaml:"statusRate" json:"statusRate"`
	ErrorCode   string        `yaml:"errorCode" json:"errorCode"`
	ErrorMsg    string        `yaml:"errorMsg" json:"errorMsg"`
	ResetRate   float64       `yaml:"resetRate" json:"resetRate"`
	VaultDown   bool          `yaml:"vaultDown" json:"vaultDown"`
}

// Faults returns the fixture's faults in the form SetFaults takes.
func (f FixtureFaults) Faults() Faults { return Faults(f) }

// FixtureError is a problem in a fixture, with where it is.
type FixtureError struct {
	File string // as given to ParseFixture or LoadFixture
	Line int    // 1-based; 0 when unknown
	Msg  string
}

func (e *FixtureError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// FixtureErrors is every problem found in a fixture, in file order.
type FixtureErrors []*FixtureError

func (es FixtureErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// maxFixtureBytes bounds what LoadFixture reads.
const maxFixtureBytes = 64 << 20

// LoadFixture reads and parses a fixture file.
func LoadFixture(path string) (*Fixture, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fakeccp: load fixture: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFixtureBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fakeccp: load fixture %s: %w", path, err)
	}
	if len(data) > maxFixtureBytes {
		return nil, &FixtureError{File: path, Msg: "file larger than 64 MiB"}
	}
	return ParseFixture(path, data)
}

var yamlLineRE = regexp.MustCompile(`line (\d+): (.*)`)

// ParseFixture decodes and validates a fixture. name is used in error
// messages. The error is a *FixtureError, or FixtureErrors when there are
// several.
func ParseFixture(name string, data []byte) (fix *Fixture, err error) {
	defer func() {
		// The YAML decoder has panicked on hostile input in the past; a
		// fixture must never crash the fake.
		if r := recover(); r != nil {
			fix, err = nil, &FixtureError{File: name, Msg: fmt.Sprintf("cannot decode: %v", r)}
		}
	}()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(name, err)
	}
	fix = new(Fixture)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(fix); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &FixtureError{File: name, Line: extra.Line, Msg: "more than one YAML document"}
	}
	fix.name = name
	v := validator{file: name, root: &root}
	v.fixture(fix)
	if len(v.errs) == 1 {
		return nil, v.errs[0]
	}
	if len(v.errs) > 1 {
		return nil, v.errs
	}
	return fix, nil
}

func yamlError(name string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var es FixtureErrors
		for _, m := range te.Errors {
			es = append(es, lineError(name, m))
		}
		if len(es) == 1 {
			return es[0]
		}
		return es
	}
	return lineError(name, err.Error())
}

func lineError(name, msg string) *FixtureError {
	msg = strings.TrimPrefix(msg, "yaml: ")
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &FixtureError{File: name, Line: n, Msg: m[2]}
	}
	return &FixtureError{File: name, Msg: msg}
}

// validator checks a decoded fixture and finds lines in the YAML tree.
type validator struct {
	file string
	root *yaml.Node
	errs FixtureErrors
}

func (v *validator) errf(path []any, format string, args ...any) {
	v.errs = append(v.errs, &FixtureError{File: v.file, Line: v.line(path), Msg: fmt.Sprintf(format, args...)})
}

// line finds the line of the node at path (map keys and sequence indexes),
// or of the closest ancestor that exists.
func (v *validator) line(path []any) int {
	n := v.root
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	best := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch p := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == p {
						next = n.Content[i+1]
						best = n.Content[i].Line
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && p < len(n.Content) {
				next = n.Content[p]
				best = next.Line
			}
		}
		if next == nil {
			return best
		}
		n = next
		if n.Kind == yaml.ScalarNode || n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode {
			best = n.Line
		}
	}
	return best
}

func p(path ...any) []any { return path }

// forbiddenValueChars may not appear in names the fake must be able to
// query: CCP refuses them in parameter values.
const forbiddenValueChars = "+&%;"

func (v *validator) fixture(f *Fixture) {
	s := &f.Settings
	switch strings.ToLower(s.PropertyCase) {
	case "", "insensitive", "sensitive":
	default:
		v.errf(p("settings", "propertyCase"), "propertyCase must be insensitive or sensitive, not %q", s.PropertyCase)
	}
	switch strings.ToLower(s.ObjectCase) {
	case "", "insensitive", "sensitive":
	default:
		v.errf(p("settings", "objectCase"), "objectCase must be insensitive or sensitive, not %q", s.ObjectCase)
	}
	switch strings.ToLower(s.AttributeMatch) {
	case "", "subset", "exact":
	default:
		v.errf(p("settings", "attributeMatch"), "attributeMatch must be subset or exact, not %q", s.AttributeMatch)
	}
	if s.NoCertificateStatus != 0 && (s.NoCertificateStatus < 400 || s.NoCertificateStatus > 599) {
		v.errf(p("settings", "noCertificateStatus"), "noCertificateStatus must be a 4xx or 5xx status, not %d", s.NoCertificateStatus)
	}

	safes := map[string]bool{}
	for i, sf := range f.Safes {
		at := p("safes", i)
		if sf.Name == "" {
			v.errf(at, "safe %d has no name", i+1)
			continue
		}
		if strings.ContainsAny(sf.Name, forbiddenValueChars) {
			v.errf(append(at, "name"), "safe name %q contains one of %q", sf.Name, forbiddenValueChars)
		}
		k := strings.ToLower(sf.Name)
		if safes[k] {
			v.errf(append(at, "name"), "safe %q is defined twice", sf.Name)
		}
		safes[k] = true
		objs := map[string]bool{}
		for j, a := range sf.Accounts {
			at := p("safes", i, "accounts", j)
			if a.Name == "" {
				v.errf(at, "account %d of safe %q has no name", j+1, sf.Name)
				continue
			}
			if strings.ContainsAny(a.Name, forbiddenValueChars) {
				v.errf(append(at, "name"), "account name %q contains one of %q", a.Name, forbiddenValueChars)
			}
			folder := a.Folder
			if folder == "" {
				folder = "Root"
			}
			if !strings.EqualFold(folder, "Root") && !strings.HasPrefix(strings.ToLower(folder), `root\`) {
				v.errf(append(at, "folder"), `folder %q must be Root or start with Root\`, a.Folder)
			}
			k := strings.ToLower(folder + `\` + a.Name)
			if objs[k] {
				v.errf(append(at, "name"), "account %q is defined twice in %s\\%s", a.Name, sf.Name, folder)
			}
			objs[k] = true
			seen := map[string]bool{}
			for name := range a.Properties {
				if name == "" || strings.ContainsAny(name, "=;&+% ") {
					v.errf(append(at, "properties"), "property name %q is empty or contains one of \"=;&+%% \"", name)
				}
				if reservedProperty(name) {
					v.errf(append(at, "properties", name), "property %q is set by the fake; use the account's own field", name)
				}
				if seen[strings.ToLower(name)] {
					v.errf(append(at, "properties", name), "property %q is defined twice (names are case-insensitive)", name)
				}
				seen[strings.ToLower(name)] = true
			}
		}
	}

	apps := map[string]bool{}
	for i, app := range f.Applications {
		at := p("applications", i)
		if app.AppID == "" {
			v.errf(at, "application %d has no appID", i+1)
			continue
		}
		if strings.ContainsAny(app.AppID, forbiddenValueChars) {
			v.errf(append(at, "appID"), "appID %q contains one of %q", app.AppID, forbiddenValueChars)
		}
		k := strings.ToLower(app.AppID)
		if apps[k] {
			v.errf(append(at, "appID"), "application %q is defined twice", app.AppID)
		}
		apps[k] = true
		au := app.Authentication
		for j, sn := range au.CertificateSerialNumbers {
			if _, ok := normalizeSerial(sn); !ok {
				v.errf(p("applications", i, "authentication", "certificateSerialNumbers", j), "certificate serial number %q is not hexadecimal", sn)
			}
		}
		for j, m := range au.AllowedMachines {
			if _, err := parseMachine(m); err != nil {
				v.errf(p("applications", i, "authentication", "allowedMachines", j), "%v", err)
			}
		}
		if ca := au.CertificateAttributes; ca != nil {
			for j, s := range ca.Issuer {
				if _, err := parseDN(s); err != nil {
					v.errf(p("applications", i, "authentication", "certificateAttributes", "issuer", j), "issuer %q: %v", s, err)
				}
			}
			for j, s := range ca.Subject {
				if _, err := parseDN(s); err != nil {
					v.errf(p("applications", i, "authentication", "certificateAttributes", "subject", j), "subject %q: %v", s, err)
				}
			}
			for j, s := range ca.SubjectAlternativeName {
				if _, _, err := parseSAN(s); err != nil {
					v.errf(p("applications", i, "authentication", "certificateAttributes", "subjectAlternativeName", j), "%v", err)
				}
			}
		}
		for j, m := range app.Safes {
			at := p("applications", i, "safes", j)
			if !safes[strings.ToLower(m.Name)] {
				v.errf(append(at, "name"), "application %q is a member of safe %q, which is not defined", app.AppID, m.Name)
			}
			for k, perm := range m.Permissions {
				switch strings.ToLower(perm) {
				case "retrieve", "list", "view", "use":
				default:
					v.errf(p("applications", i, "safes", j, "permissions", k), "unknown permission %q (want Retrieve, List, View or Use)", perm)
				}
			}
		}
	}

	ff := f.Faults
	if err := ff.Faults().validate(); err != nil {
		v.errf(p("faults"), "%v", err)
	}
}

// reservedProperty reports whether a property is filled in by the fake
// from the account's own fields.
func reservedProperty(name string) bool {
	switch strings.ToLower(name) {
	case "content", "password", "safe", "folder", "name", "object", "passwordchangeinprocess":
		return true
	}
	return false
}

// normalizeSerial returns a hex serial as CCP writes it: lowercase, no
// separators, no leading zeros.
func normalizeSerial(s string) (string, bool) {
	s = strings.NewReplacer(":", "", " ", "", "-", "").Replace(strings.TrimSpace(s))
	n, ok := new(big.Int).SetString(s, 16)
	if !ok || n.Sign() < 0 {
		return "", false
	}
	return n.Text(16), true
}

// parseMachine parses an allowed machine: an IP address or a CIDR prefix.
func parseMachine(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("allowed machine %q is not a CIDR prefix: %v", s, err)
		}
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("allowed machine %q: only IP addresses and CIDR prefixes are supported", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Passwords lists the password of every account in the fixture, as tests
// plant them: what must never appear in a log or on disk.
func (f *Fixture) Passwords() []string {
	var out []string
	for _, s := range f.Safes {
		for _, a := range s.Accounts {
			if a.Password != "" {
				out = append(out, a.Password)
			}
		}
	}
	return out
}
