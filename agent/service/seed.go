package service

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/credagent/credagent/config"
	"go.yaml.in/yaml/v3"
)

// NormalizePortalKey turns the portal's public signing key as an installer
// property carries it into the PEM block the config holds. MSI properties
// are one line, so besides PEM it accepts the base64 of the DER
// SubjectPublicKeyInfo, with or without the PEM armour's line breaks.
func NormalizePortalKey(v string) (string, error) {
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, "-----BEGIN") || !strings.Contains(v, "\n") {
		// base64 DER, or a PEM block squashed onto one line: keep the base64.
		v = strings.TrimPrefix(v, "-----BEGIN PUBLIC KEY-----")
		v = strings.TrimSuffix(v, "-----END PUBLIC KEY-----")
		der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v), ""))
		if err != nil {
			return "", errors.New("service: portal key: neither PEM nor base64 DER")
		}
		v = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	v = strings.TrimSpace(v) + "\n"
	if _, err := config.ParseSigningKey(v); err != nil {
		return "", fmt.Errorf("service: portal key: %w", err)
	}
	return v, nil
}

// SeedConfig returns the config file text base with portalKey (a PEM block,
// see NormalizePortalKey) added to portal.signing_keys unless it is already
// there, and checks that the result loads. Comments in base are kept.
func SeedConfig(base []byte, portalKey string) ([]byte, error) {
	out := base
	if portalKey != "" {
		var doc yaml.Node
		if err := yaml.Unmarshal(base, &doc); err != nil {
			return nil, fmt.Errorf("service: seeding config: %w", err)
		}
		if doc.Kind == 0 { // only comments, or empty
			head := doc.HeadComment
			doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
			doc.HeadComment = head
		}
		root := doc.Content[0]
		if root.Kind != yaml.MappingNode {
			return nil, errors.New("service: seeding config: the file is not a YAML mapping")
		}
		portal := mapValue(root, "portal", yaml.MappingNode)
		keys := mapValue(portal, "signing_keys", yaml.SequenceNode)
		present := false
		for _, k := range keys.Content {
			if strings.TrimSpace(k.Value) == strings.TrimSpace(portalKey) {
				present = true
			}
		}
		if !present {
			keys.Content = append(keys.Content, &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.LiteralStyle, Value: portalKey})
		}
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(&doc); err != nil {
			return nil, fmt.Errorf("service: seeding config: %w", err)
		}
		enc.Close()
		out = buf.Bytes()
	}
	if _, err := config.Parse(config.Default(), out); err != nil {
		return nil, fmt.Errorf("service: the initial config does not load: %w", err)
	}
	return out, nil
}

// mapValue returns the value under key in mapping m, adding one of kind if
// it is absent.
func mapValue(m *yaml.Node, key string, kind yaml.Kind) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v := m.Content[i+1]
			if v.Kind != kind { // "portal:" with nothing under it is a null scalar
				*v = yaml.Node{Kind: kind}
			}
			return v
		}
	}
	v := &yaml.Node{Kind: kind}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, v)
	return v
}
