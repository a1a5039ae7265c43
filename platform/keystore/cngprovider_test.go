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
