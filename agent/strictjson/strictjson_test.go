package strictjson

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

type inner struct {
	Name string `json:"name"`
}

var typeOfDoc = reflect.TypeFor[doc]()

type doc struct {
	AppID   string            `json:"app_id"`
	Servers []string          `json:"servers,omitempty"`
	Count   int64             `json:"count,omitempty"`
	Inner   *inner            `json:"inner,omitempty"`
	List    []inner           `json:"list,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	Any     any               `json:"any,omitempty"`
	Raw     json.RawMessage   `json:"raw,omitempty"`
	Plain   string
	Skipped string `json:"-"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, in string
		noNull   bool
		err      string // "" for success
	}{
		{"ok", `{"app_id":"A","servers":["x"],"count":3,"inner":{"name":"n"},"list":[{"name":"m"}],"labels":{"k":"v"},"Plain":"p"}`, false, ""},
		{"whitespace around", " \t\r\n{\"app_id\":\"A\"}\n ", false, ""},
		{"case variant", `{"App_ID":"A"}`, false, `unknown key "App_ID" (keys match exactly: "app_id")`},
		{"case variant duplicate", `{"app_id":"A","APP_ID":"B"}`, false, `unknown key "APP_ID"`},
		{"duplicate", `{"app_id":"A","app_id":"B"}`, false, `duplicate key "app_id"`},
		{"escaped duplicate", `{"app_id":"A","app\u005fid":"B"}`, false, `duplicate key "app_id"`},
		{"nested case variant", `{"inner":{"Name":"n"}}`, false, `inner: unknown key "Name"`},
		{"nested in list", `{"list":[{"name":"a","name":"b"}]}`, false, `list[0]: duplicate key "name"`},
		{"map duplicate", `{"labels":{"k":"v","k":"w"}}`, false, `labels: duplicate key "k"`},
		{"map keys any case", `{"labels":{"K":"v","k":"w"}}`, false, ""},
		{"any duplicate", `{"any":{"a":1,"a":2}}`, false, `any: duplicate key "a"`},
		{"untagged exact", `{"plain":"p"}`, false, `unknown key "plain"`},
		{"dash field", `{"Skipped":"p"}`, false, `unknown key "Skipped"`},
		{"unknown", `{"other":1}`, false, `unknown key "other"`},
		{"trailing", `{"app_id":"A"} {}`, false, "data after"},
		{"null allowed", `{"app_id":null}`, false, ""},
		{"null refused", `{"app_id":null}`, true, "app_id: null is not allowed"},
		{"null in list refused", `{"servers":["a",null]}`, true, "servers[1]: null"},
		{"float for int", `{"count":3.0}`, false, "cannot unmarshal"},
		{"exponent for int", `{"count":3e0}`, false, "cannot unmarshal"},
		{"bom", "\ufeff{}", false, "invalid character"},
		{"too deep", `{"any":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, false, "nested too deeply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d doc
			err := Decode([]byte(tt.in), &d, Options{NoNull: tt.noNull})
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
}

// FuzzDecode: whatever Decode accepts, encoding/json reads the same, and
// every key in it is one of the struct's names, exactly.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"app_id":"A"}`, `{"App_ID":"A"}`, `{"app_id":"A","app_id":"B"}`, `{"inner":{"name":"x"}}`, `[]`, `null`, `{"any":{"a":[1,{"b":2}]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d doc
		if Decode(b, &d, Options{}) != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(b, &m) != nil || m == nil {
			return
		}
		for k := range m {
			if _, ok := fieldsOf(typeOfDoc)[k]; !ok {
				t.Fatalf("accepted key %q", k)
			}
		}
		if s, ok := m["app_id"].(string); ok && s != d.AppID {
			t.Fatalf("app_id %q, encoding/json says %q", d.AppID, s)
		}
	})
}
