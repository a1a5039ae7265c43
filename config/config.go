// Package config is the agent's own configuration file: its schema, the
// defaults for each operating system, strict loading and validation.
//
// The file is YAML. Loading is strict: an unknown key is an error that names
// the key and its line, so a typo never silently falls back to a default.
// Validate returns every problem at once, each phrased so that an operator
// can fix it without reading the source.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/platform/keystore"
	"github.com/credagent/credagent/platform/paths"
	"go.yaml.in/yaml/v3"
)

// MaxFileBytes bounds the config file. A config is a few kilobytes.
const MaxFileBytes = 1 << 20

// Config is the whole agent configuration. The zero value is not usable; start
// from Default or Load.
type Config struct {
	// MachineID names this machine to the portal. Default: the host name.
	MachineID string `yaml:"machine_id"`

	Paths    Paths    `yaml:"paths"`
	Log      Log      `yaml:"log"`
	KeyStore KeyStore `yaml:"keystore"`
	Portal   Portal   `yaml:"portal"`
	Inbox    Inbox    `yaml:"inbox"`
	API      API      `yaml:"api"`
	Policy   Policy   `yaml:"policy"`
	CCP      CCP      `yaml:"ccp"`
	Feed     Feed     `yaml:"feed"`
	Metrics  Metrics  `yaml:"metrics"`
}

// Paths are the agent's locations on disk.
type Paths struct {
	StateDir string `yaml:"state_dir"`
	InboxDir string `yaml:"inbox_dir"`
	// Socket is a Unix socket path on Linux, a named pipe name on Windows.
	Socket string `yaml:"socket"`
}

// Log configures the operational log and the audit stream.
type Log struct {
	Level  string `yaml:"level"`  // trace, debug, info, warn, error
	Format string `yaml:"format"` // json or console
	// File is the operational log file. Empty: standard error, which systemd
	// sends to the journal.
	File string `yaml:"file"`
	// MaxSizeMB and MaxFiles bound a log file's rotation.
	MaxSizeMB int `yaml:"max_size_mb"`
	MaxFiles  int `yaml:"max_files"`
	// AuditFile receives one JSON record per resolution. Empty: the audit
	// records go to the operational log's destination, marked "audit":true.
	AuditFile string `yaml:"audit_file"`
}

// KeyStore selects where the machine key lives.
type KeyStore struct {
	// Backend is auto, tpm, file, cng or memory (tests only).
	// auto: TPM if usable, else file (Linux); CNG with the TPM provider if
	// present, else the software provider (Windows).
	Backend string `yaml:"backend"`
	// Name of the machine key inside the store.
	KeyName string `yaml:"key_name"`
	// Dir holds the key file or the TPM-wrapped key blobs.
	Dir string `yaml:"dir"`
	// TPMDevice is the TPM resource manager device (Linux).
	TPMDevice string `yaml:"tpm_device"`
}

// Portal holds what the agent trusts of the portal.
type Portal struct {
	// SigningKeys are the portal's public keys, pinned at enrolment, as PEM
	// "PUBLIC KEY" blocks (ECDSA P-256 or Ed25519). A delivery must be signed
	// by one of them.
	SigningKeys []string `yaml:"signing_keys"`
}

// Inbox configures delivery intake.
type Inbox struct {
	// RescanInterval is the periodic rescan that catches lost fsnotify events.
	RescanInterval time.Duration `yaml:"rescan_interval"`
	// MaxDeliveryBytes refuses larger files before reading them.
	MaxDeliveryBytes int64 `yaml:"max_delivery_bytes"`
	// ExpiryWarning is how long before a certificate expires the agent warns.
	ExpiryWarning time.Duration `yaml:"expiry_warning"`
	// AllowedOwners are the uids (Linux) or SIDs (Windows) that may own a
	// delivery file, besides the agent's own user.
	AllowedOwners []string `yaml:"allowed_owners"`
	// Groups are the machine groups this machine is in by configuration
	// (SPEC section 5), besides those whose key it holds: deliveries
	// addressed to them are accepted (store and credential ones at once;
	// sealed ones once the group's key has come).
	Groups []string `yaml:"groups"`
}

// API configures the local socket API.
type API struct {
	// SocketGroup is the group given access to the socket (Linux).
	SocketGroup string `yaml:"socket_group"`
	// PipeAllow are extra SIDs or account names allowed on the pipe (Windows).
	PipeAllow []string `yaml:"pipe_allow"`

	MaxRequestBytes int64         `yaml:"max_request_bytes"`
	MaxCredentials  int           `yaml:"max_credentials"`
	MaxConcurrent   int           `yaml:"max_concurrent"`
	ReadTimeout     time.Duration `yaml:"read_timeout"`
	WriteTimeout    time.Duration `yaml:"write_timeout"`
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	ShutdownGrace   time.Duration `yaml:"shutdown_grace"`
	RatePerSecond   float64       `yaml:"rate_per_second"`
	RateBurst       int           `yaml:"rate_burst"`

	// MaxConnections bounds the open connections of all callers; the last
	// sixteenth of it (at least 8) is kept for privileged callers (root,
	// the agent's user, SYSTEM, Administrators), so they still get in.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerCaller and MaxConcurrentPerCaller bound one caller
	// (uid or SID): its open connections, and its requests in progress.
	MaxConnectionsPerCaller int `yaml:"max_connections_per_caller"`
	MaxConcurrentPerCaller  int `yaml:"max_concurrent_per_caller"`
	// BodyTimeout bounds the reading of a request body, from the end of
	// its headers.
	BodyTimeout time.Duration `yaml:"body_timeout"`
}

// Policy decides which local callers may resolve which credentials. The first
// rule that matches the caller decides; no match is a refusal.
type Policy struct {
	Rules []Rule `yaml:"rules"`
}

// Operations are the operations a policy rule may grant: the resolver's
// (resolve.Ops).
func Operations() []string {
	var out []string
	for _, op := range resolve.Ops() {
		out = append(out, string(op))
	}
	return out
}

// Rule matches a caller by OS identity. Within a rule every non-empty field
// must match (AND); within a list any entry may match (OR).
type Rule struct {
	Name string `yaml:"name"`
	// Linux identities.
	UIDs   []uint32 `yaml:"uids"`
	Users  []string `yaml:"users"`
	GIDs   []uint32 `yaml:"gids"`
	Groups []string `yaml:"groups"`
	// Windows identities: user or group SIDs (S-1-5-...).
	SIDs []string `yaml:"sids"`
	// Executables restricts the caller's image path (exact, cleaned).
	Executables []string `yaml:"executables"`
	// Credentials the rule grants; "*" grants all, "prefix-*" a prefix.
	Credentials []string `yaml:"credentials"`
	// Operations the rule grants, of Operations. Empty: all.
	Operations []string `yaml:"operations"`
	// Owners whose credentials the rule can release (delivery SPEC section
	// 8). Empty: only credentials delivered without an owner.
	Owners []string `yaml:"owners"`
}

// CCP holds client defaults for every store; a store delivery may tighten them.
type CCP struct {
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	TLSTimeout     time.Duration `yaml:"tls_timeout"`
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// Retries is the number of further attempts after a transient failure.
	Retries      int           `yaml:"retries"`
	RetryBackoff time.Duration `yaml:"retry_backoff"`
	// PasswordChangeWait bounds the wait-and-retry while the CPM is changing
	// a password (FailRequestOnPasswordChange).
	PasswordChangeWait time.Duration `yaml:"password_change_wait"`
	// PoolSize is the number of connections kept to each CCP server, per
	// application identity. Requests beyond it wait for a connection
	// rather than open one, so a burst of flows costs no extra handshakes.
	PoolSize int `yaml:"pool_size"`
	// HTTP2 lets HTTP/2 be negotiated. Off by default: IIS asks for client
	// certificates by TLS renegotiation, which HTTP/2 forbids.
	HTTP2 bool `yaml:"http2"`
	// TLSMaxVersion caps TLS: "1.2", or "1.3" for no automatic fallback.
	// Empty: TLS 1.3, falling back to 1.2 (once per server, remembered)
	// for a server that asks for the client certificate only after a TLS
	// 1.3 handshake. A store delivery's tls_max_version overrides it.
	TLSMaxVersion string `yaml:"tls_max_version"`
}

// Defaults of the ccp section. agent/ccp uses the same values when a field of
// its Options is zero, so they are written once, here.
const (
	DefaultCCPConnectTimeout     = 5 * time.Second
	DefaultCCPTLSTimeout         = 10 * time.Second
	DefaultCCPRequestTimeout     = 30 * time.Second
	DefaultCCPRetries            = 2
	DefaultCCPRetryBackoff       = 200 * time.Millisecond
	DefaultCCPPasswordChangeWait = 30 * time.Second
	DefaultCCPPoolSize           = 16
)

// Default returns the configuration used when a key is absent, for this OS.
func Default() Config {
	d := paths.Default()
	c := withDefaults(d)
	setPlatformDefaults(&c, d)
	return c
}

// DevDefault returns the configuration of dev mode, everything under dir.
func DevDefault(dir string) Config {
	c := withDefaults(paths.Dev(dir))
	c.Log.Format = "console"
	c.KeyStore.Backend = keystore.BackendFile
	c.Metrics.Textfile = filepath.Join(dir, "credagent.prom") // so that a newcomer sees it
	return c
}

func withDefaults(d paths.Defaults) Config {
	host, _ := os.Hostname()
	return Config{
		MachineID: host,
		Paths:     Paths{StateDir: d.StateDir, InboxDir: d.InboxDir, Socket: d.Socket},
		Log:       Log{Level: "info", Format: "json", MaxSizeMB: 10, MaxFiles: 5},
		KeyStore:  KeyStore{Backend: keystore.BackendAuto, KeyName: "machine", Dir: d.KeyDir, TPMDevice: "/dev/tpmrm0"},
		Metrics:   Metrics{Interval: 10 * time.Second},
		Inbox: Inbox{
			RescanInterval:   30 * time.Second,
			MaxDeliveryBytes: 1 << 20,
			ExpiryWarning:    30 * 24 * time.Hour,
		},
		API: API{
			SocketGroup:     "credagent",
			MaxRequestBytes: 64 << 10,
			MaxCredentials:  32,
			MaxConcurrent:   256,
			ReadTimeout:     5 * time.Second,
			WriteTimeout:    60 * time.Second,
			IdleTimeout:     60 * time.Second,
			ShutdownGrace:   10 * time.Second,
			RatePerSecond:   200,
			RateBurst:       400,

			MaxConnections:          1024,
			MaxConnectionsPerCaller: 32,
			MaxConcurrentPerCaller:  16,
			BodyTimeout:             2 * time.Second,
		},
		CCP: CCP{
			ConnectTimeout:     DefaultCCPConnectTimeout,
			TLSTimeout:         DefaultCCPTLSTimeout,
			RequestTimeout:     DefaultCCPRequestTimeout,
			Retries:            DefaultCCPRetries,
			RetryBackoff:       DefaultCCPRetryBackoff,
			PasswordChangeWait: DefaultCCPPasswordChangeWait,
			PoolSize:           DefaultCCPPoolSize,
		},
		Feed: Feed{PollInterval: DefaultFeedPollInterval, Timeout: DefaultFeedTimeout, MaxManifestBytes: DefaultFeedMaxManifestBytes},
	}
}

// Load reads, decodes and validates the file at path over Default().
func Load(path string) (Config, error) {
	return LoadOver(Default(), path)
}

// LoadOver reads path and decodes it over base, then validates the result.
func LoadOver(base Config, path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return Config{}, fmt.Errorf("config: reading %s: %w", path, err)
	}
	if len(b) > MaxFileBytes {
		return Config{}, fmt.Errorf("config: %s: larger than %d bytes", path, MaxFileBytes)
	}
	c, err := Parse(base, b)
	if err != nil {
		return Config{}, fmt.Errorf("config: %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes b strictly over base and validates the result. Errors from
// decoding name the line; an unknown key is an error.
func Parse(base Config, b []byte) (Config, error) {
	c := base
	// yaml.v3 replaces a list it decodes into; it does not append to the
	// default's list.
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, cleanYAMLError(err)
	}
	// A second document is almost always a mistake (a stray "---").
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Config{}, errors.New("more than one YAML document")
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// cleanYAMLError turns yaml.v3's "line 3: field x not found in type
// config.Log" into "line 3: unknown key \"x\" (in log)".
func cleanYAMLError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("invalid YAML: %w", err)
	}
	msgs := make([]string, 0, len(te.Errors))
	for _, m := range te.Errors {
		if i := strings.Index(m, ": field "); i >= 0 {
			rest := m[i+len(": field "):]
			if j := strings.Index(rest, " not found in type "); j >= 0 {
				m = fmt.Sprintf("%s: unknown key %q (in %s)", m[:i], rest[:j], sectionName(rest[j+len(" not found in type "):]))
			}
		}
		msgs = append(msgs, m)
	}
	return errors.New(strings.Join(msgs, "; "))
}

func sectionName(goType string) string {
	switch strings.TrimPrefix(goType, "config.") {
	case "Config":
		return "top level"
	case "Paths":
		return "paths"
	case "Log":
		return "log"
	case "KeyStore":
		return "keystore"
	case "Portal":
		return "portal"
	case "Inbox":
		return "inbox"
	case "API":
		return "api"
	case "Policy":
		return "policy"
	case "Rule":
		return "policy.rules[]"
	case "CCP":
		return "ccp"
	case "Feed":
		return "feed"
	}
	return goType
}
