package secret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"
)

const planted = "Sap-Pr0d!pass"

func TestSecretNeverPrints(t *testing.T) {
	s := FromString(planted)
	type holder struct {
		User     string
		Password Secret
		Ptr      *Secret
	}
	h := holder{User: "svc_sap", Password: s, Ptr: &s}

	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%T"} {
		out = append(out, fmt.Sprintf(verb, s), fmt.Sprintf(verb, h), fmt.Sprintf(verb, &s))
	}
	out = append(out, fmt.Sprint(s), fmt.Sprintln(h), s.String(), s.GoString())
	out = append(out, fmt.Errorf("wrapped: %v", s).Error(), errors.New(fmt.Sprint(h)).Error())

	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(j))
	y, err := yaml.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(y))
	txt, _ := s.MarshalText()
	bin, _ := s.MarshalBinary()
	out = append(out, string(txt), string(bin))

	var buf bytes.Buffer
	log := zerolog.New(&buf)
	log.Info().Interface("h", h).Any("s", s).Stringer("str", s).Msgf("%v %s", s, h)
	log.Info().Object("o", objFunc(func(e *zerolog.Event) { e.Interface("p", s) })).Send()
	out = append(out, buf.String())

	for i, o := range out {
		if strings.Contains(o, planted) || strings.Contains(o, fmt.Sprintf("%x", planted)) {
			t.Errorf("output %d leaks the secret: %q", i, o)
		}
	}
	if !strings.Contains(buf.String(), Redacted) {
		t.Errorf("zerolog output has no redaction marker: %s", buf.String())
	}
}

type objFunc func(e *zerolog.Event)

func (f objFunc) MarshalZerologObject(e *zerolog.Event) { f(e) }

func TestSecretRevealAndWipe(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"short", []byte("x")},
		{"password", []byte(planted)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]byte(nil), tt.in...)
			s := New(in)
			if got := s.Reveal(); !bytes.Equal(got, tt.in) {
				t.Fatalf("Reveal = %q, want %q", got, tt.in)
			}
			if s.Len() != len(tt.in) || s.IsZero() != (len(tt.in) == 0) {
				t.Fatalf("Len/IsZero wrong")
			}
			c := s.Clone()
			if !c.Equal(s) {
				t.Fatal("clone differs")
			}
			copyOf := s
			s.Wipe()
			for _, b := range copyOf.Reveal() {
				if b != 0 {
					t.Fatal("wipe did not zero a copy sharing the array")
				}
			}
			if c.RevealString() != string(tt.in) {
				t.Fatal("wiping the original wiped the clone")
			}
		})
	}
}
