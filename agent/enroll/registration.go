// Package enroll describes a machine to the portal: the registration
// document that `credagent enroll` writes and that the portal (and credseal)
// read to seal deliveries to this machine.
package enroll

import (
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/strictjson"
	"github.com/credagent/credagent/agent/version"
	"github.com/credagent/credagent/platform/keystore"
)

// SchemaV1 is the registration document's schema identifier.
const SchemaV1 = "credagent-registration/v1"

// HPKESuite names the sealing suite: DHKEM(P-256, HKDF-SHA256),
// HKDF-SHA256, AES-256-GCM (RFC 9180 identifiers 0x0010, 0x0001, 0x0002).
const HPKESuite = "DHKEM(P-256,HKDF-SHA256)/HKDF-SHA256/AES-256-GCM"

// FileName is the registration document's name in the agent's state
// directory, where the agent and `credagent enroll` write it.
const FileName = "registration.json"

// MaxBytes bounds a registration document.
const MaxBytes = 64 << 10

// Registration is what the portal needs to register this machine.
type Registration struct {
	Schema       string `json:"schema"`
	MachineID    string `json:"machine_id"`
	Hostname     string `json:"hostname"`
	OS           string `json:"os"`
	AgentVersion string `json:"agent_version"`
	HPKESuite    string `json:"hpke_suite"`
	KeyBackend   string `json:"key_backend"`
	HardwareKey  bool   `json:"hardware_key"`
	// PublicKey is the uncompressed SEC 1 P-256 point, standard base64.
	PublicKey   string    `json:"public_key"`
	KeyID       string    `json:"key_id"`
	Fingerprint string    `json:"fingerprint"`
	Created     time.Time `json:"created"`
}

// New fills a registration for pub.
func New(machineID, hostname, goos, agentVersion string, info keystore.Info, pub *ecdh.PublicKey, now time.Time) Registration {
	return Registration{
		Schema:       SchemaV1,
		MachineID:    machineID,
		Hostname:     hostname,
		OS:           goos,
		AgentVersion: agentVersion,
		HPKESuite:    HPKESuite,
		KeyBackend:   info.Backend,
		HardwareKey:  info.HardwareBacked,
		PublicKey:    base64.StdEncoding.EncodeToString(pub.Bytes()),
		KeyID:        keystore.KeyID(pub),
		Fingerprint:  keystore.Fingerprint(pub),
		Created:      now.UTC(),
	}
}

// ForThisMachine fills a registration of pub for the machine this runs on:
// its host name, OS and agent version.
func ForThisMachine(machineID string, info keystore.Info, pub *ecdh.PublicKey, now time.Time) Registration {
	host, _ := os.Hostname()
	return New(machineID, host, runtime.GOOS, version.Version, info, pub, now)
}

// Marshal encodes r as indented JSON.
func (r Registration) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Parse decodes and checks a registration document: the schema, the suite,
// that the public key is a valid P-256 point, and that the key ID and
// fingerprint match it.
func Parse(rd io.Reader) (Registration, *ecdh.PublicKey, error) {
	b, err := io.ReadAll(io.LimitReader(rd, MaxBytes+1))
	if err != nil {
		return Registration{}, nil, fmt.Errorf("registration: %w", err)
	}
	if len(b) > MaxBytes {
		return Registration{}, nil, errors.New("registration: document too large")
	}
	// Keys matched exactly and once, as a portal in another language
	// reads them (SPEC.md §8).
	var r Registration
	if err := strictjson.Decode(b, &r, strictjson.Options{NoNull: true}); err != nil {
		return Registration{}, nil, fmt.Errorf("registration: %w", err)
	}
	if r.Schema != SchemaV1 {
		return Registration{}, nil, fmt.Errorf("registration: schema %q, want %q", r.Schema, SchemaV1)
	}
	if r.HPKESuite != HPKESuite {
		return Registration{}, nil, fmt.Errorf("registration: HPKE suite %q is not supported (want %q)", r.HPKESuite, HPKESuite)
	}
	raw, err := base64.StdEncoding.DecodeString(r.PublicKey)
	if err != nil {
		return Registration{}, nil, fmt.Errorf("registration: public_key: %w", err)
	}
	pub, err := ecdh.P256().NewPublicKey(raw)
	if err != nil {
		return Registration{}, nil, fmt.Errorf("registration: public_key: %w", err)
	}
	if id := keystore.KeyID(pub); r.KeyID != id {
		return Registration{}, nil, fmt.Errorf("registration: key_id %q does not match the public key (%s)", r.KeyID, id)
	}
	if fp := keystore.Fingerprint(pub); r.Fingerprint != fp {
		return Registration{}, nil, errors.New("registration: fingerprint does not match the public key")
	}
	if strings.TrimSpace(r.MachineID) == "" {
		return Registration{}, nil, errors.New("registration: machine_id is empty")
	}
	return r, pub, nil
}
