package keystore

import (
	"errors"
	"io/fs"
	"reflect"
	"testing"
)

func TestPlanCNG(t *testing.T) {
	tests := []struct {
		name     string
		recorded string
		readErr  error
		want     cngPlan
		wantErr  bool
	}{
		{"first start: TPM first, software next", "", fs.ErrNotExist,
			cngPlan{providers: []string{cngPlatformProvider, cngSoftwareProvider}}, false},
		{"recorded TPM is sticky", cngPlatformProvider + "\n", nil,
			cngPlan{providers: []string{cngPlatformProvider}, sticky: true}, false},
		{"recorded software is sticky", cngSoftwareProvider, nil,
			cngPlan{providers: []string{cngSoftwareProvider}, sticky: true}, false},
		{"software with the reason", cngSoftwareProvider + "\nwhy: the TPM's provider could not make the key\n", nil,
			cngPlan{providers: []string{cngSoftwareProvider}, sticky: true, why: "the TPM's provider could not make the key"}, false},
		{"an unexpected second line", cngSoftwareProvider + "\nsomething else\n", nil, cngPlan{}, true},
		{"garbage", "Some Other Provider", nil, cngPlan{}, true},
		{"unreadable", "", errors.New("access denied"), cngPlan{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := planCNG([]byte(tt.recorded), tt.readErr)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("plan = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCNGProviderRecordRoundTrip(t *testing.T) {
	for _, c := range []struct{ provider, why, wantWhy string }{
		{cngPlatformProvider, "", ""},
		{cngSoftwareProvider, "NTE_NOT_SUPPORTED", "NTE_NOT_SUPPORTED"},
		{cngSoftwareProvider, "two\nlines  and\tspaces", "two lines and spaces"},
	} {
		p, err := planCNG(cngProviderRecord(c.provider, c.why), nil)
		if err != nil {
			t.Fatalf("%q: %v", c.why, err)
		}
		if p.providers[0] != c.provider || !p.sticky || p.why != c.wantWhy {
			t.Errorf("%q: plan %+v", c.why, p)
		}
	}
}
